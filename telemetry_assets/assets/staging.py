"""Staging: the SPEC §3 keep rules, scenario and partner, success and dedupe, per event."""

from collections import Counter
from contextlib import closing

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from telemetry_assets.partitions import Grain
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import each_partition, register_inputs, stage_asset, stage_params
from telemetry_assets.tables import EVENT_OUTCOMES, FILTERED_EVENTS
from telemetry_core.sql import compute_connection, load_sql, utc_naive

EXCLUSION_REASONS = ("duplicate", "wrong_type", "non_prod", "test_traffic", "unattributed")


@stage_asset(
    FILTERED_EVENTS,
    "Production, non-test request events with scenario, partner and success derived; one row "
    "per distinct event id.",
)
def filtered_events(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Keep, derive and dedupe the hour's events; count every event's outcome beside them."""
    lake = store.lake
    sql = load_sql(FILTERED_EVENTS.schema, FILTERED_EVENTS.name)
    outcomes: Counter = Counter()
    for _key, window, done in each_partition(context, FILTERED_EVENTS.name, Grain.HOUR):
        with closing(compute_connection()) as con:
            register_inputs(con, lake, FILTERED_EVENTS.inputs, window)
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
