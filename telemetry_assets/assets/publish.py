"""Published availability tables (SPEC §7): what the dashboard and alerts read."""

from contextlib import closing

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, TimeWindow, asset

from telemetry_assets.checks import guard_publication
from telemetry_assets.lake import Lake
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.sql import compute_connection
from telemetry_assets.stage import DAILY_STAGE, partition_starts, run_sql_stage
from telemetry_assets.tables import (
    DAILY_LATENCY,
    MINUTE_AGGREGATE,
    SCENARIO_DAILY,
    SCENARIO_MINUTE,
    SCENARIO_PARTNER_DAILY,
    VALIDATED,
)


@asset(group_name="published", deps=["validated", "daily_latency"], kinds={"sql"}, **DAILY_STAGE)
def scenario_daily(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Availability, latency and SLO attainment per scenario and day."""
    window = context.partition_time_window
    guard_publication(store.lake, window)
    before = published_days(store.lake, window)
    metadata = run_sql_stage(context, store.lake, SCENARIO_DAILY, [VALIDATED, DAILY_LATENCY])
    return MaterializeResult(
        metadata={**metadata, **availability_report(before, published_days(store.lake, window))}
    )


def published_days(lake: Lake, window: TimeWindow) -> pd.DataFrame:
    """The scenario_daily rows of the window as they are now (empty before the first run)."""
    paths = [str(path) for start in partition_starts(SCENARIO_DAILY, window)
             if (path := lake.partition_path(SCENARIO_DAILY, start)).exists()]
    columns = ["date", "scenario_id", "scenario_name", "total_requests", "failed_requests",
               "availability_pct", "slo_target_pct", "slo_met"]
    if not paths:
        return pd.DataFrame(columns=columns)
    with closing(compute_connection()) as con:
        return con.read_parquet(paths, hive_partitioning=False).select(*columns).df()


def availability_report(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, MetadataValue]:
    """Markdown for the UI: the latest day's scenarios worst first, and what a re-run changed."""
    if after.empty:
        return {}
    latest = after[after["date"] == after["date"].max()].sort_values("availability_pct")
    table = latest.assign(
        availability_pct=latest["availability_pct"].round(3),
        slo_met=latest["slo_met"].map({True: "yes", False: "**no**"}),
    )[["scenario_id", "scenario_name", "total_requests", "failed_requests", "availability_pct",
       "slo_target_pct", "slo_met"]]
    breaching = latest[~latest["slo_met"].astype(bool)]
    report = {
        "day": MetadataValue.text(str(pd.Timestamp(latest["date"].iloc[0]).date())),
        "availability_by_scenario": MetadataValue.md(table.to_markdown(index=False)),
        "worst_scenarios": MetadataValue.md(
            "\n".join(f"- {row.scenario_id}: {row.availability_pct:.3f} % "
                      f"(SLO {row.slo_target_pct:g} %)" for row in latest.head(5).itertuples())
        ),
        "scenarios_missing_slo": len(breaching),
    }
    if not before.empty:
        compared = after.merge(before, on=["date", "scenario_id"], how="outer",
                               suffixes=("", "_before"))
        compared["change_pct_points"] = (
            compared["availability_pct"] - compared["availability_pct_before"]
        )
        changed = compared[compared["change_pct_points"].abs() > 1e-9]
        report["availability_change"] = MetadataValue.md(
            changed[["date", "scenario_id", "availability_pct_before", "availability_pct",
                     "change_pct_points"]].round(4).to_markdown(index=False)
            if not changed.empty else "no change from the previous publication"
        )
        report["max_availability_change_pct_points"] = float(
            compared["change_pct_points"].abs().max(skipna=True) or 0.0
        )
    return report


@asset(group_name="published", deps=["validated", "daily_latency"], kinds={"sql"}, **DAILY_STAGE)
def scenario_partner_daily(
    context: AssetExecutionContext, store: TelemetryStore
) -> MaterializeResult:
    """Availability and latency per scenario, partner and day."""
    guard_publication(store.lake, context.partition_time_window)
    return MaterializeResult(
        metadata=run_sql_stage(
            context, store.lake, SCENARIO_PARTNER_DAILY, [VALIDATED, DAILY_LATENCY]
        )
    )


@asset(group_name="published", deps=["validated", "minute_aggregate"], kinds={"sql"}, **DAILY_STAGE)
def scenario_minute(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Availability per scenario and minute of the day, for incident charts."""
    guard_publication(store.lake, context.partition_time_window)
    return MaterializeResult(
        metadata=run_sql_stage(context, store.lake, SCENARIO_MINUTE, [VALIDATED, MINUTE_AGGREGATE])
    )
