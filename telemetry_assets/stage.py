"""Running a stage's SQL for every partition of a run, one private engine per partition.

A run may cover one partition or a whole range (a single-run backfill): either way each
partition is computed from its own window and written as its own file, so a range run and a
run per partition produce the same files.
"""

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Backoff,
    Failure,
    Jitter,
    RetryPolicy,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)

from telemetry_assets.lake import Grain, Lake, Table, UpstreamMissing
from telemetry_assets.partitions import daily_partitions, hourly_partitions
from telemetry_assets.sql import compute_connection, load_sql, window_params

# The latency summary's bucket growth factor g: percentiles are within (g-1)/(g+1) ≈ 0.99 %.
LATENCY_GROWTH = 1.02
# Bucket index for a latency of exactly 0 ms (ln 0 is undefined); below every real bucket.
ZERO_LATENCY_BUCKET = -1_000_000

progress_log = logging.getLogger("telemetry_assets.progress")

# Transient failures (a file replaced or a disk hiccup mid-read, a warehouse lock held too long)
# are retried; a missing upstream partition is not transient and fails at once (see below).
TRANSIENT_RETRY = RetryPolicy(
    max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
# Every SQL step runs in this pool, so an instance can cap concurrent heavy steps across runs.
COMPUTE_POOL = "telemetry_compute"

HOURLY_STAGE = {
    "partitions_def": hourly_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "retry_policy": TRANSIENT_RETRY,
    "pool": COMPUTE_POOL,
}
DAILY_STAGE = {**HOURLY_STAGE, "partitions_def": daily_partitions}


@dataclass(frozen=True)
class PartitionProgress:
    """One partition of one stage done; the CLI renders these as a progress display."""

    stage: str
    partition: str
    done: int
    total: int
    rows: int
    seconds: float


def partitions_of(grain: Grain) -> TimeWindowPartitionsDefinition:
    return hourly_partitions if grain is Grain.HOUR else daily_partitions


def partition_starts(table: Table, window: TimeWindow) -> list[datetime | None]:
    """The start of every partition of `table` inside `window` (one snapshot if unpartitioned)."""
    if table.grain is Grain.SNAPSHOT:
        return [None]
    partitions = partitions_of(table.grain)
    return [
        partitions.time_window_for_partition_key(key).start
        for key in partitions.get_partition_keys_in_time_window(window)
    ]


def stage_params(sql: str, window: TimeWindow, **extra: Any) -> dict[str, Any]:
    """The named parameters `sql` uses, from the window and the platform's constants."""
    available = {
        **window_params(window),
        "latency_growth": LATENCY_GROWTH,
        "zero_bucket": ZERO_LATENCY_BUCKET,
        **extra,
    }
    used = set(re.findall(r"\$([a-z_]+)", sql))
    return {name: value for name, value in available.items() if name in used}


def partition_windows(context: AssetExecutionContext, grain: Grain) -> list[tuple[str, TimeWindow]]:
    partitions = partitions_of(grain)
    return [(key, partitions.time_window_for_partition_key(key)) for key in context.partition_keys]


def each_partition(
    context: AssetExecutionContext, stage: str, grain: Grain
) -> Iterator[tuple[str, TimeWindow, Callable[[int], None]]]:
    """Yield (key, window, done) for each partition of the run; `done(rows)` reports progress."""
    windows = partition_windows(context, grain)
    for position, (key, window) in enumerate(windows, start=1):
        started = time.perf_counter()

        def done(rows: int, position: int = position, key: str = key, started: float = started):
            # Progress goes to Python logging only: a Dagster log event per partition would cost
            # a write to the event log each, more than the SQL of a quiet hour.
            elapsed = time.perf_counter() - started
            progress_log.info(
                "%s %s", stage, key,
                extra={"progress": PartitionProgress(
                    stage, key, position, len(windows), rows, elapsed
                )},
            )

        yield key, window, done


def register_inputs(
    con: duckdb.DuckDBPyConnection, lake: Lake, inputs: Sequence[Table], window: TimeWindow
) -> None:
    for table in inputs:
        try:
            lake.register(con, table, partition_starts(table, window))
        except UpstreamMissing as missing:
            raise Failure(description=str(missing), allow_retries=False) from missing


def run_sql_stage(
    context: AssetExecutionContext, lake: Lake, table: Table, inputs: Sequence[Table]
) -> dict[str, Any]:
    """Materialize `table` from dbt_like_sql/<schema>/<name>.sql for every partition of the run."""
    sql = load_sql(table.schema, table.name)
    rows_by_partition = {}
    for key, window, done in each_partition(context, table.name, table.grain):
        with closing(compute_connection()) as con:
            register_inputs(con, lake, inputs, window)
            rows = lake.write(table, window.start, con.sql(sql, params=stage_params(sql, window)))
        rows_by_partition[key] = rows
        done(rows)
    lake.publish_views([table])
    return {
        "rows": sum(rows_by_partition.values()),
        "partitions": len(rows_by_partition),
        "table": table.qualified_name,
        "files": str(lake.table_dir(table)),
    }
