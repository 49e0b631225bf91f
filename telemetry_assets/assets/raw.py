"""Raw ingest: the hour's landing files parsed into events, malformed lines quarantined.

The `raw` group and its side output in the `quarantine` group: one parse decides both.
"""

import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindow,
    multi_asset,
)

from telemetry_assets import markdown
from telemetry_assets.lake import Lake
from telemetry_assets.partitions import Grain
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import Partition, map_chunks, stage_policies
from telemetry_assets.tables import RAW_EVENTS, REJECTED_EVENTS
from telemetry_core.durable import ensure_dir
from telemetry_core.landing import (
    DEFECT_SCHEMA,
    StreamDefect,
    arrival_times,
    classify_hours,
    landing_bytes,
    landing_files,
    read_lines,
)
from telemetry_core.spark import (
    member_conditions,
    query,
    remove_stale,
    tag_partitions,
    tagged_union,
    views_session,
    write_partitions,
)
from telemetry_core.spark import session as spark_session
from telemetry_core.sql import compute_connection, load_sql, window_params

# Both engines split `classified` (the raw stage's verdict on every line) with the same SQL.
REJECTED_SQL = """
select source_file as file, line_number, reject_reason as reason, raw_line,
    $partition_key as partition_key
from classified where reject_reason is not null
union all
select file, line_number, reason, raw_line, $partition_key
from stream_defects
"""
REJECTED_ORDER = ("file", "line_number")
# Under the lake's root: the hours' landing lines on their way to a Spark cluster.
SPARK_STAGING = ".spark-staging"


def reason_table(counts: Counter) -> MetadataValue:
    return markdown.table(counts.most_common(), ["reason", "lines"])


def rejected_reasons(lake: Lake, window: TimeWindow) -> Counter:
    """Rejected lines per reason, from the partition just written (a broken stream's reason is
    named by its text before the colon)."""
    table = pq.read_table(lake.partition_path(REJECTED_EVENTS, window.start), columns=["reason"])
    counts = table.column("reason").value_counts().to_pylist()
    reasons: Counter = Counter()
    for count in counts:
        reasons[count["values"].split(":")[0]] += count["counts"]
    return reasons


def split_on_spark(spark: Any, lake: Lake, hours: list[tuple[str, TimeWindow, list[Path]]]
                   ) -> list[tuple[int, tuple[int, int, int, Counter]]]:
    """The split of a chunk of hours on Spark: the lines are numbered on the driver (the same
    reader as DuckDB's, with its gzip recovery), judged by raw_events.spark.sql on the cluster,
    each hour's partitions written from its files' lines."""
    lines, defects = read_lines([path for _key, _window, files in hours for path in files])
    # The lines go to the executors as a Parquet file beside the lake, which they all read: an
    # hour's lines through the driver's JVM would need its heap many times over.
    # (No colon in the name: a Hadoop path takes it for a URI scheme.)
    first = hours[0][1]
    staged = (lake.root / SPARK_STAGING
              / f"landing-lines-{first.start:%Y%m%dT%H}-{uuid.uuid4().hex}.parquet")
    ensure_dir(staged.parent)
    remove_stale(staged.parent, "landing-lines-*")
    pq.write_table(lines, staged, compression="zstd")
    own = views_session(spark, parquet={"landing_lines": [staged]}, arrow={
        "landing_arrivals": arrival_times([(window, files) for _key, window, files in hours]),
    })
    window = TimeWindow(first.start, hours[-1][1].end)
    verdicts = query(own, load_sql("raw", "raw_events.spark"), window_params(window)).persist()
    names = [[str(path) for path in files] for _key, _window, files in hours]
    of_hour = member_conditions("source_file", names)
    try:
        events = write_partitions(
            tag_partitions(verdicts.where("reject_reason is null")
                           .drop("reject_reason", "raw_line"), of_hour),
            [lake.partition_path(RAW_EVENTS, window.start) for _key, window, _files in hours])
        rejected_by_hour = []
        for (key, _window, _files), files, condition in zip(hours, names, of_hour, strict=True):
            # Analysed as it is made: each hour's frame keeps its own two views.
            verdicts.where(condition).createOrReplaceTempView("classified")
            own.createDataFrame(pa.Table.from_pylist(
                [vars(d) for d in defects if d.file in files], schema=DEFECT_SCHEMA)
            ).createOrReplaceTempView("stream_defects")
            rejected_by_hour.append(query(own, REJECTED_SQL, {"partition_key": key}))
        rejected = write_partitions(
            tagged_union(rejected_by_hour),
            [lake.partition_path(REJECTED_EVENTS, window.start) for _key, window, _f in hours],
            order_by=REJECTED_ORDER)
    finally:
        verdicts.unpersist()
        staged.unlink(missing_ok=True)
    return [(kept + bad, (len(files), kept, bad, rejected_reasons(lake, window)))
            for (_key, window, files), kept, bad in zip(hours, events, rejected, strict=True)]


@multi_asset(
    specs=[
        AssetSpec(
            RAW_EVENTS.asset,
            group_name=RAW_EVENTS.schema,
            description="Every valid event of the hour's landing files, flattened to SPEC §2 "
            "names; one row per landing line.",
            kinds={"parquet"},
        ),
        AssetSpec(
            REJECTED_EVENTS.asset,
            group_name=REJECTED_EVENTS.schema,
            description="Landing lines that are not valid events, with file, line number and "
            "reason; one row per rejected line.",
            kinds={"parquet"},
        ),
    ],
    **stage_policies(Grain.HOUR),
)
def landing_events(context: AssetExecutionContext, store: TelemetryStore):
    """Read the hour's landing files with line numbers and split valid events from bad lines."""
    settings = store.settings
    lake = store.lake

    def split(chunk: list[Partition]) -> list[tuple[int, tuple[int, int, int, Counter]]]:
        listed = [(window, landing_files(settings.landing_dir, window.start))
                  for _key, window in chunk]
        if store.engine_name == "spark":
            return split_on_spark(spark_session(store.spark_master_url), lake, [
                (key, window, files) for (key, _), (window, files) in zip(chunk, listed,
                                                                          strict=True)])
        with closing(compute_connection()) as con:
            defects = classify_hours(con, listed)
            several = len(chunk) > 1
            if several:
                con.execute("alter table classified rename to chunk_classified")
            return [write_hour(con, key, window, files, defects if several else None)
                    for (key, _), (window, files) in zip(chunk, listed, strict=True)]

    def write_hour(con: duckdb.DuckDBPyConnection, key: str, window: TimeWindow,
                   files: list[Path], chunk_defects: list[StreamDefect] | None
                   ) -> tuple[int, tuple[int, int, int, Counter]]:
        """The hour's two partitions from `classified`, or, in a chunk of several hours, from
        its files' share of `chunk_classified` and of the chunk's defects."""
        if chunk_defects is not None:
            names = [str(path) for path in files]
            con.execute("create or replace temp table classified as select * from "
                        "chunk_classified where list_contains($files, source_file)",
                        {"files": names})
            con.register("stream_defects", pa.Table.from_pylist(
                [vars(defect) for defect in chunk_defects if defect.file in names],
                schema=DEFECT_SCHEMA))
        events_in_hour = lake.write(RAW_EVENTS, window.start, con.sql(
            "select * exclude (reject_reason, raw_line) from classified "
            "where reject_reason is null"))
        rejected_in_hour = lake.write(REJECTED_EVENTS, window.start, con.sql(
            REJECTED_SQL + f" order by {', '.join(REJECTED_ORDER)}",
            params={"partition_key": key}))
        return (events_in_hour + rejected_in_hour,
                (len(files), events_in_hour, rejected_in_hour, rejected_reasons(lake, window)))

    hours = map_chunks(context, RAW_EVENTS.name, Grain.HOUR, split, store.at_once,
                       lambda window: landing_bytes(settings.landing_dir, window.start))
    files_read = sum(files for files, _, _, _ in hours)
    events = sum(events for _, events, _, _ in hours)
    rejected = sum(rejected for _, _, rejected, _ in hours)
    reasons: Counter = sum((reasons for _, _, _, reasons in hours), Counter())
    lake.publish_views([RAW_EVENTS, REJECTED_EVENTS])
    yield MaterializeResult(
        asset_key=RAW_EVENTS.asset,
        metadata={
            "events": events,
            "rejected_lines": rejected,
            "files_read": files_read,
            "partitions": len(context.partition_keys),
            "table": RAW_EVENTS.qualified_name,
        },
    )
    yield MaterializeResult(
        asset_key=REJECTED_EVENTS.asset,
        metadata={
            "rejected_lines": rejected,
            "rejected_by_reason": reason_table(reasons),
            "table": REJECTED_EVENTS.qualified_name,
        },
    )
