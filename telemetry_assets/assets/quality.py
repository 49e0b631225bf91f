"""The daily data-quality summary: what came in, what was set aside and why, which rules held."""

from contextlib import closing

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from telemetry_assets.checks import AUDITS, run_audit
from telemetry_assets.lake import Grain
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.schemas import QualitySummary
from telemetry_assets.sql import compute_connection, load_sql
from telemetry_assets.stage import DAILY_STAGE, each_partition, register_inputs, stage_params
from telemetry_assets.tables import EVENT_OUTCOMES, QUALITY_SUMMARY, REJECTED_EVENTS, VALIDATED


@asset(group_name="quality",
       deps=["validated", "scenario_minute", "filtered_events", "rejected_events"],
       kinds={"sql", "pandera"}, **DAILY_STAGE)
def quality_summary(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Per day: landing lines read, events, rejected lines, exclusions by reason, held-back
    requests, and how many quality rules failed."""
    lake = store.lake
    sql = load_sql(QUALITY_SUMMARY.schema, QUALITY_SUMMARY.name)
    days = []
    for _key, window, done in each_partition(context, QUALITY_SUMMARY.name, Grain.DAY):
        with closing(compute_connection()) as con:
            register_inputs(con, lake, [EVENT_OUTCOMES, REJECTED_EVENTS, VALIDATED], window)
            frame = con.execute(sql, stage_params(sql, window)).df()
            failed = [
                outcome.audit.sql_name + ("" if audit.blocking else " (warning)")
                for audit in AUDITS if not (outcome := run_audit(lake, audit, window)).passed
            ]
            frame = frame.assign(checks_run=len(AUDITS), checks_failed=len(failed),
                                 failed_checks=", ".join(failed))
            frame = QualitySummary.validate(frame, lazy=True)
            done(lake.write(QUALITY_SUMMARY, window.start, con.from_df(frame)))
        days.append(frame)
    lake.publish_views([QUALITY_SUMMARY])
    summary = pd.concat(days, ignore_index=True)
    latest = summary.iloc[-1]
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(summary.to_markdown(index=False)),
            "rejected_lines": int(latest["rejected_lines"]),
            "checks_failed": int(latest["checks_failed"]),
            "table": QUALITY_SUMMARY.qualified_name,
        }
    )
