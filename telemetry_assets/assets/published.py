"""Published availability tables (SPEC §7): what the dashboard and alerts read."""

from contextlib import closing

import duckdb
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindow,
)

from telemetry_assets import markdown
from telemetry_assets.checks.audits import guard_publication
from telemetry_assets.lake import Lake, Table
from telemetry_assets.partitions import Grain, by_day, partition_starts
from telemetry_assets.resources import QualitySettings, TelemetryStore
from telemetry_assets.revisions import (
    clear_revision_base,
    day_inputs,
    previous_inputs,
    record_revisions,
    revision_base,
    save_inputs,
)
from telemetry_assets.stage import DAILY_FRESHNESS, run_sql_stage, stage_asset
from telemetry_assets.tables import (
    OBJECTIVE_DAILY,
    SCENARIO_DAILY,
    SCENARIO_MINUTE,
    SCENARIO_PARTNER_DAILY,
)
from telemetry_core.annotations import AnnotationStore
from telemetry_core.sql import compute_connection


def published_asset(table: Table, description: str) -> AssetsDefinition:
    """A published SQL stage that writes only when its inputs pass the blocking audits."""

    @stage_asset(table, description, freshness_policy=DAILY_FRESHNESS)
    def publish(context: AssetExecutionContext, store: TelemetryStore,
                quality: QualitySettings) -> MaterializeResult:
        window = context.partition_time_window
        guard_publication(context.run.run_id, store.lake, window, quality.thresholds)
        before = None
        inputs_before: dict = {}
        if table is SCENARIO_DAILY:
            try:
                before = revision_base(store.lake, window, published_days(store.lake, window))
                inputs_before = {start.date(): previous_inputs(store.lake, start)
                                 for start in partition_starts(Grain.DAY, window)}
            except (duckdb.Error, OSError, ValueError) as error:
                # A damaged previous publication is what a re-run repairs: never a reason
                # not to publish, only nothing to compare with.
                context.log.warning(f"previous publication unreadable: {error}")
        metadata = run_sql_stage(context, store, table)
        if before is not None:
            after = published_days(store.lake, window)
            metadata.update(availability_report(before, after))
            try:
                metadata.update(explain_publication(context, store, window, before, after,
                                                    inputs_before))
                clear_revision_base(store.lake, window)
            except Exception:  # the figures are published: never fail them now
                context.log.exception("the revision of this publication was not recorded")
        return MaterializeResult(metadata=metadata)

    return publish


def published_days(lake: Lake, window: TimeWindow) -> pd.DataFrame:
    """The scenario_daily rows of the window as they are now (empty before the first run)."""
    columns = ["date", "scenario_id", "scenario_name", "total_requests", "failed_requests",
               "availability_pct", "slo_target_pct", "slo_met"]
    with closing(compute_connection()) as con:
        if not lake.register(con, SCENARIO_DAILY, window, existing_only=True):
            return pd.DataFrame(columns=columns)
        return con.table(SCENARIO_DAILY.name).select(*columns).df()


ANNOTATIONS_SHOWN = 20


def explain_publication(context: AssetExecutionContext, store: TelemetryStore,
                        window: TimeWindow, before: pd.DataFrame, after: pd.DataFrame,
                        inputs_before: dict) -> dict[str, MetadataValue]:
    """Record why the figures moved (revisions), keep the inputs for the next publication, and
    the metadata that says both. A publication killed before the inputs are kept compares the
    next one with older inputs, which can name more causes, never fewer."""
    metadata = {}
    inputs_now = {day.start.date(): day_inputs(store.lake, day) for day in by_day(window)}
    revised = record_revisions(store.lake, context.run.run_id, window, before, after,
                               inputs_before, inputs_now)
    if revised:
        metadata["revision"] = revision_report(revised)
    noted = AnnotationStore(store.lake.root).between(window.start, window.end)
    if noted:
        metadata["annotations"] = annotation_report(noted)
    for day in by_day(window):
        save_inputs(store.lake, day.start, inputs_now[day.start.date()])
    return metadata


def annotation_report(noted: list) -> MetadataValue:
    """The annotations over the published days, as the dashboard lists them."""
    frame = pd.DataFrame([(a.starts_at, a.ends_at, a.kind, a.scope + (
        f":{a.scope_value}" if a.scope_value else ""), a.text, a.source)
        for a in noted[-ANNOTATIONS_SHOWN:]],
        columns=["start", "end", "kind", "scope", "text", "source"])
    return markdown.frame_table(frame)


def revision_report(rows: list[dict]) -> MetadataValue:
    """The scenarios a re-publication changed, rounded, with why (full figures: explain)."""
    frame = pd.DataFrame(rows)[["date", "scenario_id", "availability_pct_before",
                                "availability_pct", "total_requests_before", "total_requests",
                                "hours_rerun", "reason"]]
    return markdown.frame_table(frame.round(4))


def availability_report(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, MetadataValue]:
    """Markdown for the UI: the latest day's scenarios worst first, and what a re-run changed."""
    if after.empty:
        return {}
    latest = after[after["date"] == after["date"].max()].sort_values("availability_pct")
    table = latest.assign(
        availability_pct=latest["availability_pct"].round(3),
        slo_met=latest["slo_met"].map({True: "yes", False: markdown.Bold("no")}),
    )[["scenario_id", "scenario_name", "total_requests", "failed_requests", "availability_pct",
       "slo_target_pct", "slo_met"]]
    breaching = latest[~latest["slo_met"].astype(bool)]
    report = {
        "day": MetadataValue.text(str(pd.Timestamp(latest["date"].iloc[0]).date())),
        "availability_by_scenario": markdown.frame_table(table),
        "worst_scenarios": MetadataValue.md(
            "\n".join(f"- {markdown.cell(row.scenario_id)}: {row.availability_pct:.3f} % "
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
        report["availability_change"] = markdown.frame_table(
            changed[["date", "scenario_id", "availability_pct_before", "availability_pct",
                     "change_pct_points"]].round(4),
            empty="no change from the previous publication",
        )
        report["max_availability_change_pct_points"] = float(
            compared["change_pct_points"].abs().max(skipna=True) or 0.0
        )
    return report


scenario_daily = published_asset(
    SCENARIO_DAILY, "Availability, latency and SLO attainment per scenario and day."
)
scenario_partner_daily = published_asset(
    SCENARIO_PARTNER_DAILY, "Availability and latency per scenario, partner and day."
)
scenario_minute = published_asset(
    SCENARIO_MINUTE, "Availability per scenario and minute of the day, for incident charts."
)
objective_daily = published_asset(
    OBJECTIVE_DAILY, "Attainment of every availability and latency objective per scenario and day."
)
