"""Filter, aggregate, translate and validate: the SPEC §3 rules as SQL stages."""

from collections import Counter
from contextlib import closing

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from telemetry_assets.lake import Grain
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.sql import compute_connection, load_sql, utc_naive
from telemetry_assets.stage import (
    DAILY_STAGE,
    HOURLY_STAGE,
    each_partition,
    register_inputs,
    run_sql_stage,
    stage_params,
)
from telemetry_assets.tables import (
    CUSTOMERS,
    DAILY_AGGREGATE,
    DAILY_LATENCY,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    OPERATION_SCENARIOS,
    RAW_EVENTS,
    SCENARIOS,
    TRANSLATED,
    VALIDATED,
)

EXCLUSION_REASONS = ("duplicate", "wrong_type", "non_prod", "test_traffic", "unattributed")


@asset(
    group_name="staging", deps=["raw_events", "operation_scenarios"], kinds={"sql"},
    **HOURLY_STAGE,
)
def filtered_events(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Production, non-test request events with scenario, partner and success derived; one row
    per distinct event id."""
    lake = store.lake
    sql = load_sql(FILTERED_EVENTS.schema, FILTERED_EVENTS.name)
    outcomes: Counter = Counter()
    for _key, window, done in each_partition(context, FILTERED_EVENTS.name, Grain.HOUR):
        with closing(compute_connection()) as con:
            register_inputs(con, lake, [RAW_EVENTS, OPERATION_SCENARIOS], window)
            con.execute("create temp table classified as " + sql, stage_params(sql, window))
            kept = lake.write(
                FILTERED_EVENTS,
                window.start,
                con.sql("select * exclude (exclusion_reason) from classified "
                        "where exclusion_reason is null"),
            )
            outcome_rows = con.sql(
                """
                select cast($hour as timestamp) as hour,
                    coalesce(exclusion_reason, 'kept') as outcome,
                    count(*) as events
                from classified group by all
                """,
                params={"hour": utc_naive(window.start)},
            )
            lake.write(EVENT_OUTCOMES, window.start, outcome_rows)
            outcomes.update(dict(outcome_rows.project("outcome, events").fetchall()))
        done(kept)
    lake.publish_views([FILTERED_EVENTS, EVENT_OUTCOMES])
    excluded = {reason: outcomes[reason] for reason in EXCLUSION_REASONS}
    return MaterializeResult(
        metadata={
            "kept": outcomes["kept"],
            "excluded": sum(excluded.values()),
            **{f"excluded_{reason}": count for reason, count in excluded.items()},
            "outcomes": MetadataValue.md(
                "| outcome | events |\n|---|---|\n"
                + "\n".join(
                    f"| {name} | {outcomes[name]} |" for name in ("kept", *EXCLUSION_REASONS)
                )
            ),
            "table": FILTERED_EVENTS.qualified_name,
        }
    )


@asset(group_name="aggregate", deps=[filtered_events], kinds={"sql"}, **HOURLY_STAGE)
def minute_aggregate(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Requests, successes, failures and latency totals per scenario, partner, minute, request
    type and cloud environment."""
    return MaterializeResult(
        metadata=run_sql_stage(context, store.lake, MINUTE_AGGREGATE, [FILTERED_EVENTS])
    )


@asset(group_name="aggregate", deps=[filtered_events], kinds={"sql"}, **HOURLY_STAGE)
def minute_latency(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Mergeable latency histogram (log-spaced buckets, growth 1.02) at the minute_aggregate
    grain; one row per bucket."""
    return MaterializeResult(
        metadata=run_sql_stage(context, store.lake, MINUTE_LATENCY, [FILTERED_EVENTS])
    )


@asset(group_name="aggregate", deps=[minute_latency], kinds={"sql"}, **DAILY_STAGE)
def daily_latency(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """The minute latency histograms merged per day at the daily_aggregate grain."""
    return MaterializeResult(
        metadata=run_sql_stage(context, store.lake, DAILY_LATENCY, [MINUTE_LATENCY])
    )


@asset(group_name="aggregate", deps=[minute_aggregate, daily_latency], kinds={"sql"}, **DAILY_STAGE)
def daily_aggregate(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Daily requests, request-weighted average latency and p50/p95/p99 per scenario, partner,
    request type and cloud environment, built from minute rows."""
    return MaterializeResult(
        metadata=run_sql_stage(
            context, store.lake, DAILY_AGGREGATE, [MINUTE_AGGREGATE, DAILY_LATENCY]
        )
    )


@asset(group_name="curated", deps=[daily_aggregate, "scenarios", "customers"], kinds={"sql"},
       **DAILY_STAGE)
def translated(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """daily_aggregate with scenario names, services, SLO targets and partner names and tiers;
    unknown ids kept and flagged."""
    return MaterializeResult(
        metadata=run_sql_stage(
            context, store.lake, TRANSLATED, [DAILY_AGGREGATE, SCENARIOS, CUSTOMERS]
        )
    )


@asset(group_name="curated", deps=[translated], kinds={"sql"}, **DAILY_STAGE)
def validated(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """translated rows with availability and the reason a row is held back from publication."""
    metadata = run_sql_stage(context, store.lake, VALIDATED, [TRANSLATED])
    return MaterializeResult(metadata=metadata)
