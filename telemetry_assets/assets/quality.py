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
from telemetry_assets.resources import QualitySettings, TelemetryStore
from telemetry_assets.stage import map_partitions, register_inputs, stage_asset, stage_params
from telemetry_assets.tables import QUALITY_SUMMARY, SCENARIO_MINUTE, UNREAD_LANDING_FILES
from telemetry_core.landing import unread_landing_files
from telemetry_core.sql import compute_connection, load_sql


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
            return lake.write(QUALITY_SUMMARY, window.start, con.from_df(frame)), frame

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
