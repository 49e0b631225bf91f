"""Running a stage's SQL for every partition of a run, and the factory that makes a SQL stage an
asset from its `tables.py` entry.

A run may cover one partition or a whole range (a single-run backfill): either way each
partition is written as its own file, with the rows its own window gives, so a range run and a
run per partition produce the same files, whichever partitions of a range are computed at the
same time. Consecutive quiet partitions of a stage whose rows depend only on their own window
are computed by one statement over the chunk and split by time (`map_chunks`): on Spark, one job
writes the chunk's files.
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
from telemetry_core.spark import (
    ClusterLost,
    tag_partitions,
    tagged_union,
    window_conditions,
    write_partitions,
)
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


Partition = tuple[str, TimeWindow]

# A stage local to its partitions computes consecutive ones in one statement, up to this much
# input (Parquet files; the raw stage counts landing files) and this many partitions: a quiet
# hour's statement costs its planning, tens of milliseconds, far more than its rows, while a
# busy hour (100k events: 3 MB of raw Parquet, 22 MB of landing files) stays alone or nearly,
# and memory bounded as it was.
CHUNK_INPUT_BYTES = 8 * 2**20
CHUNK_PARTITIONS = 24


def chunked(partitions: list[Partition], size_of: Callable[[TimeWindow], int]
            ) -> list[list[Partition]]:
    """Consecutive partitions grouped while their input stays within the chunk limits."""
    chunks: list[list[Partition]] = []
    size = 0
    for key, window in partitions:
        grows = size_of(window)
        current = chunks[-1] if chunks else None
        if (current is None or len(current) >= CHUNK_PARTITIONS
                or current[-1][1].end != window.start or size + grows > CHUNK_INPUT_BYTES):
            chunks.append([(key, window)])
            size = grows
        else:
            current.append((key, window))
            size += grows
    return chunks


def chunk_window(chunk: list[Partition]) -> TimeWindow:
    """The window a chunk of consecutive partitions spans."""
    return TimeWindow(chunk[0][1].start, chunk[-1][1].end)


def map_partitions(
    context: AssetExecutionContext, stage: str, grain: Grain,
    work: Callable[[str, TimeWindow], tuple[int, T]], at_once: int = 1,
) -> list[T]:
    """`work(key, window) -> (rows, result)` for every partition of the run, `at_once` of them
    at a time (see map_chunks); the results in partition order."""
    return map_chunks(context, stage, grain, lambda chunk: [work(*chunk[0])], at_once)


def map_chunks(
    context: AssetExecutionContext, stage: str, grain: Grain,
    work: Callable[[list[Partition]], list[tuple[int, T]]], at_once: int = 1,
    size_of: Callable[[TimeWindow], int] | None = None,
) -> list[T]:
    """`work(chunk) -> [(rows, result), ...]` for every chunk of the run's partitions (one
    partition each, unless `size_of`, the input size of a partition, lets `chunked` group them),
    `at_once` chunks at a time, reporting progress of each partition as its chunk ends; the
    results in partition order.

    A partition's SQL runs on 2 threads at best and its Parquet file is written on one, so two
    at once keep both cores of a small machine busy. The first failure stops the chunks not
    started yet and is raised once the running ones end.
    """
    partitions = windows_of(grain, list(context.partition_keys))
    planned = (chunked(partitions, size_of) if size_of
               else [[partition] for partition in partitions])
    finished = 0
    lock = threading.Lock()

    def run(chunk: list[Partition]) -> list[T]:
        nonlocal finished
        started = time.perf_counter()
        try:
            done = work(chunk)
        except ClusterLost as lost:
            # A retry would wait out a new session's registration with the same dead master.
            raise Failure(description=str(lost), allow_retries=False) from lost
        share = (time.perf_counter() - started) / len(chunk)
        for (key, _window), (rows, _result) in zip(chunk, done, strict=True):
            with lock:
                finished += 1
                position = finished
            # Progress goes to Python logging only: a Dagster log event per partition would
            # cost a write to the event log each, more than the SQL of a quiet hour.
            progress_log.info(
                "%s %s", stage, key,
                extra={"progress": PartitionProgress(stage, key, position, len(partitions),
                                                     rows, share)},
            )
        return [result for _rows, result in done]

    if at_once <= 1 or len(planned) == 1:
        return [result for chunk in planned for result in run(chunk)]
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix=stage) as pool:
        futures = [pool.submit(run, chunk) for chunk in planned]
        try:
            return [result for future in futures for result in future.result()]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def input_bytes(lake: Lake, inputs: Iterable[Table]) -> Callable[[TimeWindow], int]:
    """The size of the inputs' partition files of a window (a missing one counts nothing: the
    chunk's registration names it)."""
    def size(window: TimeWindow) -> int:
        return sum(path.stat().st_size
                   for table in inputs if table.grain is not Grain.SNAPSHOT
                   for path in lake.partition_files(table, window, existing_only=True))
    return size


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
                master: str) -> Callable[[list[Partition]], list[tuple[int, int]]]:
    """A chunk's computation of `table` on Spark: the same SQL file over the same lake files, once
    for the chunk, each partition's rows committed as its one file."""
    spark = engine_session(master)

    def compute(chunk: list[Partition]) -> list[tuple[int, int]]:
        window = chunk_window(chunk)
        frame = run_on_spark(spark, sql, spark_views(lake, table.inputs, window),
                             stage_params(sql, window))
        tagged = (tag_partitions(frame, window_conditions(
            table.partition_column, [(w.start, w.end) for _key, w in chunk]))
            if len(chunk) > 1 else tagged_union([frame]))
        rows = write_partitions(tagged, [lake.partition_path(table, w.start) for _key, w in chunk])
        return [(count, count) for count in rows]

    return compute


def split_by_partition(con: duckdb.DuckDBPyConnection, lake: Lake, table: Table, computed: str,
                       chunk: list[Partition]) -> list[int]:
    """Write each partition of the chunk from the relation `computed` of the whole chunk, its
    rows told apart by the table's partition column; the row counts in chunk order."""
    placed = f"cast({table.partition_column} as timestamp)"
    return [lake.write(table, window.start, con.sql(
        f"select * from {computed} where {placed} >= $window_start and {placed} < $window_end",
        params=window_params(window))) for _key, window in chunk]


def run_sql_stage(context: AssetExecutionContext, store: TelemetryStore,
                  table: Table) -> dict[str, Any]:
    """Materialize `table` from dbt_like_sql/<schema>/<name>.sql for every partition of the run."""
    lake = store.lake
    sql = load_sql(table.schema, table.name)

    def compute(chunk: list[Partition]) -> list[tuple[int, int]]:
        window = chunk_window(chunk)
        with closing(compute_connection()) as con:
            register_inputs(con, lake, table.inputs, window)
            params = stage_params(sql, window)
            if len(chunk) == 1:
                rows = lake.write(table, window.start, con.sql(sql, params=params))
                return [(rows, rows)]
            con.execute("create temp table computed as " + sql, params)
            return [(rows, rows) for rows in split_by_partition(con, lake, table, "computed",
                                                                chunk)]

    size_of = input_bytes(lake, table.inputs) if table.partition_column is not None else None
    if store.engine_name == "spark":
        compute = spark_stage(lake, table, sql, store.spark_master_url)

    rows_by_partition = map_chunks(context, table.name, table.grain, compute, store.at_once,
                                   size_of)
    lake.publish_views([table])
    return {
        "rows": sum(rows_by_partition),
        "partitions": len(rows_by_partition),
        "table": table.qualified_name,
        "files": str(lake.table_dir(table)),
    }
