"""Running a stage's SQL for every partition of a run, and the factory that makes a SQL stage an
asset from its `tables.py` entry.

A run may cover one partition or a whole range (a single-run backfill): either way each
partition is computed from its own window in a private engine session and written as its own
file, so a range run and a run per partition produce the same files, whichever partitions of a
range are computed at the same time.
"""

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Backoff,
    Failure,
    FreshnessPolicy,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    TimeWindow,
    asset,
)

from telemetry_assets.lake import Lake, Table, UpstreamMissing
from telemetry_assets.partitions import Grain, partitions_of, windows_of
from telemetry_assets.resources import TelemetryStore
from telemetry_core.spark import ClusterLost, write_single_file
from telemetry_core.spark import run as run_on_spark
from telemetry_core.spark import session as engine_session
from telemetry_core.sql import (
    LATENCY_GROWTH,
    ZERO_LATENCY_BUCKET,
    compute_connection,
    load_sql,
    window_params,
)

T = TypeVar("T")

# staging.event_outcomes of an hour, from the filtered stage's verdicts (its SQL's rows as the
# temp table `classified`): written beside filtered_events by the hourly run and the live path.
OUTCOMES_SQL = """
select cast($hour as timestamp) as hour, coalesce(exclusion_reason, 'kept') as outcome,
    count(*) as events
from classified group by all
"""

progress_log = logging.getLogger("telemetry_assets.progress")

# Transient failures (a file replaced or a disk hiccup mid-read, a warehouse lock held too long)
# are retried; a missing upstream partition is not transient and fails at once (see below).
TRANSIENT_RETRY = RetryPolicy(
    max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
# Every SQL step runs in this pool, so an instance can cap concurrent heavy steps across runs.
COMPUTE_POOL = "telemetry_compute"

# An hour is processed 15 minutes after it closes: older than that, the schedule has stalled.
HOURLY_FRESHNESS = FreshnessPolicy.time_window(
    warn_window=timedelta(hours=2), fail_window=timedelta(hours=4)
)
# A day is processed once all its hours are in, shortly after midnight UTC.
DAILY_FRESHNESS = FreshnessPolicy.time_window(
    warn_window=timedelta(hours=27), fail_window=timedelta(hours=48)
)


def stage_policies(grain: Grain) -> dict[str, Any]:
    """Partitions, single-run backfills, retries and pool of a stage of this grain."""
    if grain is Grain.SNAPSHOT:
        return {}
    return {
        "partitions_def": partitions_of(grain),
        "backfill_policy": BackfillPolicy.single_run(),
        "retry_policy": TRANSIENT_RETRY,
        "pool": COMPUTE_POOL,
    }


def stage_asset(table: Table, description: str, *, kinds: Iterable[str] = ("sql",),
                extra_deps: Iterable[str] = (), **options: Any) -> Callable[..., AssetsDefinition]:
    """The @asset decorator of the stage that writes `table`: name, group, deps, partitions and
    policies all come from its entry in tables.py."""
    return asset(
        name=table.asset,
        group_name=table.schema,
        deps=[*dict.fromkeys(t.asset for t in table.inputs), *extra_deps],
        description=description,
        kinds=set(kinds),
        **stage_policies(table.grain),
        **options,
    )


def sql_asset(table: Table, description: str, **options: Any) -> AssetsDefinition:
    """An asset that runs dbt_like_sql/<schema>/<name>.sql for each partition of its run."""

    @stage_asset(table, description, **options)
    def sql_stage(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
        return MaterializeResult(metadata=run_sql_stage(context, store, table))

    return sql_stage


@dataclass(frozen=True)
class PartitionProgress:
    """One partition of one stage done; the CLI renders these as a progress display."""

    stage: str
    partition: str
    done: int
    total: int
    rows: int
    seconds: float


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


def map_partitions(
    context: AssetExecutionContext, stage: str, grain: Grain,
    work: Callable[[str, TimeWindow], tuple[int, T]], at_once: int = 1,
) -> list[T]:
    """`work(key, window) -> (rows, result)` for every partition of the run, `at_once` of them
    at a time, reporting progress as each ends; the results in partition order.

    A partition's SQL runs on 2 threads at best and its Parquet file is written on one, so two
    partitions at once keep both cores of a small machine busy. The first failure stops the
    partitions not started yet and is raised once the running ones end.
    """
    windows = windows_of(grain, list(context.partition_keys))
    finished = 0
    lock = threading.Lock()

    def run(key: str, window: TimeWindow) -> T:
        nonlocal finished
        started = time.perf_counter()
        try:
            rows, result = work(key, window)
        except ClusterLost as lost:
            # A retry would wait out a new session's registration with the same dead master.
            raise Failure(description=str(lost), allow_retries=False) from lost
        elapsed = time.perf_counter() - started
        with lock:
            finished += 1
            position = finished
        # Progress goes to Python logging only: a Dagster log event per partition would cost
        # a write to the event log each, more than the SQL of a quiet hour.
        progress_log.info(
            "%s %s", stage, key,
            extra={"progress": PartitionProgress(stage, key, position, len(windows), rows,
                                                 elapsed)},
        )
        return result

    if at_once <= 1 or len(windows) == 1:
        return [run(key, window) for key, window in windows]
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix=stage) as pool:
        futures = [pool.submit(run, key, window) for key, window in windows]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def register_inputs(
    con: duckdb.DuckDBPyConnection, lake: Lake, inputs: Iterable[Table], window: TimeWindow
) -> None:
    """Each input's partitions of the window as a view named after it; a missing one fails the
    step without retries, since waiting will not make it appear."""
    for table in inputs:
        try:
            lake.register(con, table, window)
        except UpstreamMissing as missing:
            raise Failure(description=str(missing), allow_retries=False) from missing


def spark_views(lake: Lake, inputs: Iterable[Table], window: TimeWindow) -> dict[str, list[Path]]:
    """Each input's partition files of the window, by view name, for a Spark session; a missing
    one fails the step without retries, as register_inputs does on DuckDB."""
    try:
        return {table.name: lake.partition_files(table, window) for table in inputs}
    except UpstreamMissing as missing:
        raise Failure(description=str(missing), allow_retries=False) from missing


def spark_stage(lake: Lake, table: Table, sql: str,
                master: str) -> Callable[[str, TimeWindow], tuple[int, int]]:
    """A partition's computation of `table` on Spark: the same SQL file over the same lake files,
    its result committed as the partition's one file."""
    spark = engine_session(master)

    def compute(_key: str, window: TimeWindow) -> tuple[int, int]:
        frame = run_on_spark(spark, sql, spark_views(lake, table.inputs, window),
                             stage_params(sql, window))
        rows = write_single_file(frame, lake.partition_path(table, window.start))
        return rows, rows

    return compute


def run_sql_stage(context: AssetExecutionContext, store: TelemetryStore,
                  table: Table) -> dict[str, Any]:
    """Materialize `table` from dbt_like_sql/<schema>/<name>.sql for every partition of the run."""
    lake = store.lake
    sql = load_sql(table.schema, table.name)

    def compute(_key: str, window: TimeWindow) -> tuple[int, int]:
        with closing(compute_connection()) as con:
            register_inputs(con, lake, table.inputs, window)
            rows = lake.write(table, window.start, con.sql(sql, params=stage_params(sql, window)))
        return rows, rows

    if store.engine_name == "spark":
        compute = spark_stage(lake, table, sql, store.spark_master_url)

    rows_by_partition = map_partitions(context, table.name, table.grain, compute,
                                       store.at_once)
    lake.publish_views([table])
    return {
        "rows": sum(rows_by_partition),
        "partitions": len(rows_by_partition),
        "table": table.qualified_name,
        "files": str(lake.table_dir(table)),
    }
