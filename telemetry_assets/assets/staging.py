"""Staging: the SPEC §3 keep rules, scenario and partner, success and dedupe, per event."""

from collections import Counter
from contextlib import closing
from datetime import timedelta
from typing import Any

import duckdb
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, TimeWindow

from telemetry_assets import markdown
from telemetry_assets.jobs import LATER_HOURS_TO_RERUN
from telemetry_assets.lake import Lake
from telemetry_assets.partitions import Grain, key_of, windows_of
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import (
    OUTCOMES_SQL,
    Partition,
    chunk_window,
    input_bytes,
    map_chunks,
    register_inputs,
    spark_views,
    stage_asset,
    stage_params,
)
from telemetry_assets.tables import EVENT_OUTCOMES, FILTERED_EVENTS, RAW_EVENTS
from telemetry_core.spark import (
    query,
    tag_partitions,
    tagged_union,
    views_session,
    window_conditions,
    write_partitions,
)
from telemetry_core.spark import session as spark_session
from telemetry_core.sql import compute_connection, load_sql, utc_naive, window_params

EXCLUSION_REASONS = ("duplicate", "wrong_type", "non_prod", "test_traffic", "unattributed")



def register_earlier_copies(
    con: duckdb.DuckDBPyConnection, lake: Lake, window: TimeWindow, horizon: timedelta
) -> None:
    """`earlier_raw_events`: the raw events of the horizon before the window, from the hours
    processed so far (an hour that arrives later re-runs this one: see later_hours_to_rerun)."""
    found = lake.register(con, RAW_EVENTS, TimeWindow(window.start - horizon, window.start),
                          view_name="earlier_raw_events", existing_only=True)
    if not found:
        con.execute("create or replace temp view earlier_raw_events as "
                    "select event_id, event_time from raw_events where false")


def later_hours_to_rerun(lake: Lake, run: TimeWindow, horizon: timedelta) -> list[str]:
    """Processed hours after the run that kept an event whose id the run has seen earlier, within
    the horizon: their copy is now a duplicate, so they must be run again."""
    with closing(compute_connection()) as con:
        found = lake.register(con, FILTERED_EVENTS, TimeWindow(run.end, run.end + horizon),
                              view_name="later_kept", existing_only=True)
        if not found:
            return []
        lake.register(con, RAW_EVENTS, TimeWindow(max(run.start, run.end - horizon), run.end),
                      view_name="run_copies")
        hours = con.execute(
            """
            select distinct cast(date_trunc('hour', later.event_time) as timestamp)
            from later_kept as later
            join run_copies as copy on later.event_id = copy.event_id
            where copy.event_time >= later.event_time - $horizon
            order by 1
            """,
            {"horizon": horizon},
        ).fetchall()
    return [key_of(Grain.HOUR, hour) for (hour,) in hours]


def keep_on_spark(spark: Any, lake: Lake, sql: str, chunk: list[Partition],
                  horizon: timedelta) -> list[tuple[int, dict[str, int]]]:
    """The keep rules of a chunk of hours on Spark, from the same SQL and the same earlier
    copies; each hour's filtered events and outcomes written as on DuckDB."""
    window = chunk_window(chunk)
    hours = [(hour.start, hour.end) for _key, hour in chunk]
    of_hour = window_conditions("event_time", hours)
    earlier = lake.partition_files(RAW_EVENTS, TimeWindow(window.start - horizon, window.start),
                                   existing_only=True)
    own = views_session(spark, parquet={
        **spark_views(lake, FILTERED_EVENTS.inputs, window),
        **({"earlier_raw_events": earlier} if earlier else {})})
    if not earlier:
        own.sql("select cast(null as string) as event_id, cast(null as timestamp) as event_time "
                "where false").createOrReplaceTempView("earlier_raw_events")
    verdicts = query(own, sql, stage_params(
        sql, window, dedupe_horizon_hours=horizon // timedelta(hours=1))).persist()
    try:
        kept = write_partitions(
            tag_partitions(verdicts.where("exclusion_reason is null").drop("exclusion_reason"),
                           of_hour),
            [lake.partition_path(FILTERED_EVENTS, start) for start, _end in hours])
        by_hour = []
        for condition, (start, _end) in zip(of_hour, hours, strict=True):
            # Analysed as it is made: each hour's frame keeps its own `classified`.
            verdicts.where(condition).createOrReplaceTempView("classified")
            by_hour.append(query(own, OUTCOMES_SQL, {"hour": utc_naive(start)}))
        outcome_paths = [lake.partition_path(EVENT_OUTCOMES, start) for start, _end in hours]
        write_partitions(tagged_union(by_hour), outcome_paths)
    finally:
        verdicts.unpersist()
    # A handful of rows per hour, read back rather than computed again.
    outcomes = [pq.read_table(path, columns=["outcome", "events"]).to_pydict()
                for path in outcome_paths]
    return [(count, dict(zip(hour["outcome"], hour["events"], strict=True)))
            for count, hour in zip(kept, outcomes, strict=True)]


@stage_asset(
    FILTERED_EVENTS,
    "Production, non-test request events with scenario, partner and success derived; one row "
    "per distinct event id.",
)
def filtered_events(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    """Keep, derive and dedupe the hour's events; count every event's outcome beside them."""
    lake = store.lake
    horizon = store.dedupe_horizon
    sql = load_sql(FILTERED_EVENTS.schema, FILTERED_EVENTS.name)

    def keep(chunk: list[Partition]) -> list[tuple[int, dict[str, int]]]:
        window = chunk_window(chunk)
        if store.engine_name == "spark":
            return keep_on_spark(spark_session(store.spark_master_url), lake, sql, chunk, horizon)
        with closing(compute_connection()) as con:
            register_inputs(con, lake, FILTERED_EVENTS.inputs, window)
            register_earlier_copies(con, lake, window, horizon)
            con.execute("create temp table chunk_classified as " + sql, stage_params(
                sql, window, dedupe_horizon_hours=horizon // timedelta(hours=1)))
            return [write_hour(con, hour) for _key, hour in chunk]

    def write_hour(con: duckdb.DuckDBPyConnection, hour: TimeWindow) -> tuple[int, dict[str, int]]:
        """The hour's filtered events and outcomes, from its share of the chunk's verdicts."""
        con.execute("create or replace temp table classified as select * from chunk_classified "
                    "where event_time >= $window_start and event_time < $window_end",
                    window_params(hour))
        kept = lake.write(
            FILTERED_EVENTS,
            hour.start,
            con.sql("select * exclude (exclusion_reason) from classified "
                    "where exclusion_reason is null"),
        )
        outcome_rows = con.sql(OUTCOMES_SQL, params={"hour": utc_naive(hour.start)})
        lake.write(EVENT_OUTCOMES, hour.start, outcome_rows)
        return kept, dict(outcome_rows.project("outcome, events").fetchall())

    outcomes: Counter = Counter()
    for hour_outcomes in map_chunks(context, FILTERED_EVENTS.name, Grain.HOUR, keep,
                                    store.at_once,
                                    input_bytes(lake, [RAW_EVENTS])):
        outcomes.update(hour_outcomes)
    lake.publish_views([FILTERED_EVENTS, EVENT_OUTCOMES])
    windows = [window for _, window in windows_of(Grain.HOUR, list(context.partition_keys))]
    stale = later_hours_to_rerun(lake, TimeWindow(windows[0].start, windows[-1].end), horizon)
    if stale:
        context.log.warning(
            f"{len(stale)} later hour(s) kept events this run has seen earlier within "
            f"{horizon}; the late_landing_files sensor re-runs them: {', '.join(stale)}"
        )
    excluded = {reason: outcomes[reason] for reason in EXCLUSION_REASONS}
    return MaterializeResult(
        metadata={
            LATER_HOURS_TO_RERUN: MetadataValue.json(stale),
            "kept": outcomes["kept"],
            "excluded": sum(excluded.values()),
            **{f"excluded_{reason}": count for reason, count in excluded.items()},
            "outcomes": markdown.table(
                [(name, outcomes[name]) for name in ("kept", *EXCLUSION_REASONS)],
                ["outcome", "events"],
            ),
            "table": FILTERED_EVENTS.qualified_name,
        }
    )
