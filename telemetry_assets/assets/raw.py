"""Raw ingest: the hour's landing files parsed into events, malformed lines quarantined.

The `raw` group and its side output in the `quarantine` group: one parse decides both.
"""

from collections import Counter
from contextlib import closing

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindow,
    multi_asset,
)

from telemetry_assets import markdown
from telemetry_assets.partitions import Grain
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import map_partitions, stage_policies
from telemetry_assets.tables import RAW_EVENTS, REJECTED_EVENTS
from telemetry_core.landing import classify_files, landing_files
from telemetry_core.sql import compute_connection


def reason_table(counts: Counter) -> MetadataValue:
    return markdown.table(counts.most_common(), ["reason", "lines"])


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

    def split(key: str, window: TimeWindow) -> tuple[int, tuple[int, int, int, Counter]]:
        files = landing_files(settings.landing_dir, window.start)
        with closing(compute_connection()) as con:
            defects = classify_files(con, files, window)
            events_in_hour = lake.write(
                RAW_EVENTS,
                window.start,
                con.sql(
                    "select * exclude (reject_reason, raw_line) from classified "
                    "where reject_reason is null"
                ),
            )
            rejected_in_hour = lake.write(
                REJECTED_EVENTS,
                window.start,
                con.sql(
                    """
                    select source_file as file, line_number, reject_reason as reason, raw_line,
                        $partition_key as partition_key
                    from classified where reject_reason is not null
                    union all
                    select file, line_number, reason, raw_line, $partition_key
                    from stream_defects
                    order by file, line_number
                    """,
                    params={"partition_key": key},
                ),
            )
            reasons = Counter(dict(con.sql(
                "select reject_reason, count(*) from classified "
                "where reject_reason is not null group by all"
            ).fetchall()))
        reasons.update(defect.reason.split(":")[0] for defect in defects)
        return (events_in_hour + rejected_in_hour,
                (len(files), events_in_hour, rejected_in_hour, reasons))

    hours = map_partitions(context, RAW_EVENTS.name, Grain.HOUR, split, store.at_once)
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
