"""The daily data-quality summary: what came in, what was set aside and why, which rules held."""

from contextlib import closing
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
from dagster import AssetExecutionContext, MaterializeResult, TimeWindow

from telemetry_assets import markdown
from telemetry_assets.checks.audits import AUDITS, ledger
from telemetry_assets.checks.schemas import QualitySummary
from telemetry_assets.partitions import Grain
from telemetry_assets.resources import QualitySettings, QualityThresholds, TelemetryStore
from telemetry_assets.stage import map_partitions, register_inputs, stage_asset, stage_params
from telemetry_assets.tables import QUALITY_SUMMARY, SCENARIO_MINUTE, UNREAD_LANDING_FILES
from telemetry_core.annotations import Annotation, note, platform_id
from telemetry_core.landing import unread_landing_files
from telemetry_core.sql import compute_connection, load_sql, utc_naive


def quality_annotations(day: pd.Series, held_back: list[tuple[str, int]], window: TimeWindow,
                        thresholds: QualityThresholds) -> list[Annotation]:
    """What the charts should say about a day's input: a quarantine share above the audit's
    limit, and each scenario held back from publication, at the day's start (a band over the
    whole day would hide the chart). An id per figure: a re-run that finds other figures notes
    them too."""
    start = utc_naive(window.start)
    notes = []
    lines = int(day["events"]) + int(day["rejected_lines"])
    rejected = int(day["rejected_lines"])
    if lines and rejected / lines > thresholds.max_quarantine_share:
        notes.append(Annotation(
            starts_at=start, kind="quarantine_spike", source="platform:quality",
            text=f"{start:%Y-%m-%d}: {rejected:,} of {lines:,} landing lines quarantined "
                 f"({rejected / lines:.2%}, above {thresholds.max_quarantine_share:.2%}): see "
                 "quarantine.rejected_events for each line and its reason",
            annotation_id=platform_id("quarantine_spike", start, rejected, lines)))
    for scenario_id, requests in held_back:
        notes.append(Annotation(
            starts_at=start, kind="held_back", source="platform:quality",
            text=f"{start:%Y-%m-%d}: {requests:,} requests of scenario {scenario_id!r} held "
                 "back from publication: it is not in scenarios.csv",
            annotation_id=platform_id("held_back", start, scenario_id, requests)))
    return notes


@stage_asset(
    QUALITY_SUMMARY,
    "Per day: landing lines read, events, rejected lines, exclusions by reason, held-back "
    "requests, and how many quality rules failed.",
    kinds=("sql", "pandera"),
    # Every audit is judged for the day, the published minutes' completeness included.
    extra_deps=[SCENARIO_MINUTE.asset],
)
def quality_summary(context: AssetExecutionContext, store: TelemetryStore,
                    quality: QualitySettings) -> MaterializeResult:
    """Summarise each day of the run, with the outcome of every audit over that day."""
    lake = store.lake
    thresholds = quality.thresholds
    sql = load_sql(QUALITY_SUMMARY.schema, QUALITY_SUMMARY.name)

    def summarise(_key: str, window: TimeWindow) -> tuple[int, pd.DataFrame]:
        with closing(compute_connection()) as con:
            register_inputs(con, lake, QUALITY_SUMMARY.inputs, window)
            frame = con.execute(sql, stage_params(sql, window)).df()
            failed = [
                audit.name + ("" if audit.blocking else " (warning)")
                for audit in AUDITS
                if not ledger.outcome(context.run.run_id, lake, audit, window, thresholds).passed
            ]
            frame = frame.assign(checks_run=len(AUDITS), checks_failed=len(failed),
                                 failed_checks=", ".join(failed))
            frame = QualitySummary.validate(frame, lazy=True)
            held_back = con.sql("select scenario_id, cast(sum(total_requests) as bigint) "
                                "from validated where hold_reason is not null "
                                "group by all order by 2 desc, 1").fetchall()
            written = lake.write(QUALITY_SUMMARY, window.start, con.from_df(frame))
        note(lake.root, quality_annotations(frame.iloc[0], held_back, window, thresholds),
             context.log)
        return written, frame

    # One day at a time: the day's audits are judged through the run's ledger.
    days = map_partitions(context, QUALITY_SUMMARY.name, Grain.DAY, summarise)
    unread = unread_landing_files(store.settings.landing_dir,
                                  datetime.now(UTC).replace(tzinfo=None))
    with closing(compute_connection()) as con:
        lake.write(UNREAD_LANDING_FILES, None, con.from_arrow(pa.table(
            {"file": [f.path for f in unread], "reason": [f.reason for f in unread]},
            schema=pa.schema([("file", pa.string()), ("reason", pa.string())]),
        )))
    lake.publish_views([QUALITY_SUMMARY, UNREAD_LANDING_FILES])
    if unread:
        context.log.warning(
            f"{len(unread)} landing file(s) are outside every hour the pipeline reads, e.g. "
            f"{unread[0].path} ({unread[0].reason}): see {UNREAD_LANDING_FILES.qualified_name}"
        )
    summary = pd.concat(days, ignore_index=True)
    latest = summary.iloc[-1]
    return MaterializeResult(
        metadata={
            "summary": markdown.frame_table(summary),
            "unread_landing_files": len(unread),
            "rejected_lines": int(latest["rejected_lines"]),
            "checks_failed": int(latest["checks_failed"]),
            "table": QUALITY_SUMMARY.qualified_name,
        }
    )
