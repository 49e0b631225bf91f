"""Published availability tables (SPEC §7): what the dashboard and alerts read."""

from dagster import AssetExecutionContext, MaterializeResult, asset

from telemetry_assets.checks import guard_publication
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import DAILY_STAGE, run_sql_stage
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
    guard_publication(store.lake, context.partition_time_window)
    return MaterializeResult(
        metadata=run_sql_stage(context, store.lake, SCENARIO_DAILY, [VALIDATED, DAILY_LATENCY])
    )


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
