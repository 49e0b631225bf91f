"""What the dashboard shows, read from the warehouse in one short read-only visit."""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
from dagster import TimeWindow

from telemetry_assets.mood.burn_rates import Episode, MoodPolicy, MoodReport, current_mood, episodes
from telemetry_assets.partitions import hourly_partitions, keys_in
from telemetry_assets.tables import MOOD_NOTIFICATIONS, UNREAD_LANDING_FILES

HEATMAP_BUCKET_MINUTES = 10
PARTNERS_SHOWN = 15

# Per scenario: the chosen day, the selected days, and the error-budget window (whole days, the
# mood policy's) up to the chosen day, all from published.scenario_daily.
SCENARIOS_SQL = """
with days as (
    select * from published.scenario_daily
    where date > cast($day as date) - $budget_days and date <= cast($day as date)
)
select
    scenario_id,
    max(scenario_name) as scenario_name,
    max(slo_target_pct) as slo_target_pct,
    max(case when date = cast($day as date) then total_requests end) as day_requests,
    max(case when date = cast($day as date) then failed_requests end) as day_failed,
    max(case when date = cast($day as date) then availability_pct end) as day_availability_pct,
    bool_or(case when date = cast($day as date) then slo_met end) as day_slo_met,
    max(case when date = cast($day as date) then avg_latency_ms end) as day_avg_latency_ms,
    max(case when date = cast($day as date) then p50_latency_ms end) as p50_latency_ms,
    max(case when date = cast($day as date) then p95_latency_ms end) as p95_latency_ms,
    max(case when date = cast($day as date) then p99_latency_ms end) as p99_latency_ms,
    sum(total_requests) filter (where date >= cast($first_day as date)) as range_requests,
    sum(failed_requests) filter (where date >= cast($first_day as date)) as range_failed,
    100.0 * sum(successful_requests) filter (where date >= cast($first_day as date))
        / nullif(sum(total_requests) filter (where date >= cast($first_day as date)), 0)
        as range_availability_pct,
    count(*) filter (where date >= cast($first_day as date)) as range_days,
    count(*) filter (where date >= cast($first_day as date) and slo_met) as range_days_met,
    sum(total_requests) as budget_requests,
    sum(failed_requests) as budget_failed,
    sum(total_requests) * (100 - max(slo_target_pct)) / 100 as budget_allowed
from days
group by scenario_id
order by day_availability_pct nulls last, scenario_id
"""

HEATMAP_SQL = """
select
    scenario_id,
    time_bucket(to_minutes($bucket), minute) as bucket,
    100.0 * sum(successful_requests) / nullif(sum(total_requests), 0) as availability_pct,
    sum(total_requests) as requests
from published.scenario_minute
where minute >= cast($start as timestamp) and minute < cast($end as timestamp)
group by all
order by scenario_id, bucket
"""

QUALITY_SQL = """
select 'excluded' as kind, outcome as reason, sum(events) as events
from staging.event_outcomes
where hour >= cast($start as timestamp) and hour < cast($end as timestamp)
group by outcome
union all
select 'quarantined', reason, count(*)
from quarantine.rejected_events
where list_contains($hour_keys, partition_key)
group by reason
union all
select 'held back', hold_reason, sum(total_requests)
from curated.validated
where date = cast($day as date) and hold_reason is not null
group by hold_reason
"""


@dataclass(frozen=True)
class Selection:
    """What a reader asked for: the day, how many days up to it, and the scenario to zoom into."""

    day: date
    days: int = 7
    scenario_id: str | None = None

    @property
    def first_day(self) -> date:
        return self.day - timedelta(days=self.days - 1)


@dataclass
class DashboardData:
    """Every figure on the page."""

    selection: Selection
    available_days: list[date]
    scenarios: list[dict[str, Any]]
    scenario_id: str | None
    minutes: list[dict[str, Any]]
    daily: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    partner_count: int
    heatmap: list[dict[str, Any]]
    episodes: list[Episode]
    quality: dict[str, dict[str, int]]
    mood: MoodReport | None
    policy: MoodPolicy
    notifications: list[dict[str, Any]] = field(default_factory=list)
    # Damaged lake files the figures were read without, each with its repair.
    damage: tuple[str, ...] = ()

    @property
    def incidents(self) -> list[Episode]:
        """The day's breaching episodes: what someone was (or would have been) paged for."""
        return [episode for episode in self.episodes if episode.state == "breaching"]

    @property
    def scenario(self) -> dict[str, Any] | None:
        return next((s for s in self.scenarios if s["scenario_id"] == self.scenario_id), None)

    def mood_of(self, scenario_id: str):
        if self.mood is None:
            return None
        return next((m for m in self.mood.scenarios if m.scenario_id == scenario_id), None)


class NoData(LookupError):
    """Nothing is published yet, or not for the day asked."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict]:
    cursor = con.execute(sql, params)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(
        "select schema_name || '.' || view_name from duckdb_views() where not internal"
    ).fetchall()}


def published_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Days with published availability, newest first."""
    if "published.scenario_daily" not in _views(con):
        return []
    return [day for (day,) in con.execute(
        "select distinct date from published.scenario_daily order by date desc"
    ).fetchall()]


def budget_days(policy: MoodPolicy) -> int:
    """The mood's error-budget window in whole days (at least one), as published days count."""
    return max(1, math.ceil(policy.budget_minutes / 1440))


def gather(con: duckdb.DuckDBPyConnection, selection: Selection | None,
           policy: MoodPolicy) -> DashboardData:
    """Read every figure for the selection (default: the latest published day, its week)."""
    available = published_days(con)
    if not available:
        raise NoData("nothing is published yet: run the pipeline first (make demo)")
    selection = selection or Selection(available[0])
    if selection.day not in available:
        raise NoData(f"nothing is published for {selection.day}")
    day = selection.day
    start = datetime.combine(day, time())
    end = start + timedelta(days=1)
    views = _views(con)

    scenarios = _rows(con, SCENARIOS_SQL, {
        "day": day, "first_day": selection.first_day, "budget_days": budget_days(policy),
    })
    for row in scenarios:
        allowed = row["budget_allowed"]
        row["budget_remaining_pct"] = (
            100.0 * (1 - row["budget_failed"] / allowed) if allowed else None
        )
    mood, found = None, []
    if {"aggregate.minute_aggregate", "reference.scenarios"} <= views:
        mood = current_mood(con, policy)
        found = episodes(con, policy, start, end)

    on_day = [row for row in scenarios if row["day_requests"] is not None]
    known = {row["scenario_id"] for row in on_day}
    # By default, zoom into the day's longest incident, else the lowest availability.
    paged: dict[str, int] = {}
    for episode in found:
        if episode.state == "breaching":
            paged[episode.scenario_id] = paged.get(episode.scenario_id, 0) + episode.minutes
    default = max(paged, key=lambda s: (paged[s], s)) if paged else (
        on_day[0]["scenario_id"] if on_day else None)
    scenario_id = selection.scenario_id if selection.scenario_id in known else default

    minutes = _rows(con, """
        select minute, total_requests, failed_requests, availability_pct, avg_latency_ms
        from published.scenario_minute
        where scenario_id = $scenario and minute >= cast($start as timestamp)
            and minute < cast($end as timestamp)
        order by minute
    """, {"scenario": scenario_id, "start": start, "end": end})
    daily = _rows(con, """
        select date, availability_pct, slo_target_pct, total_requests, failed_requests
        from published.scenario_daily
        where scenario_id = $scenario and date >= cast($first_day as date)
            and date <= cast($day as date)
        order by date
    """, {"scenario": scenario_id, "first_day": selection.first_day, "day": day})
    partners = _rows(con, """
        select partner_id, partner_name, total_requests, failed_requests, availability_pct,
            avg_latency_ms, p95_latency_ms
        from published.scenario_partner_daily
        where scenario_id = $scenario and date = cast($day as date)
        order by failed_requests desc, availability_pct, partner_id
    """, {"scenario": scenario_id, "day": day})
    heatmap = _rows(con, HEATMAP_SQL, {
        "bucket": HEATMAP_BUCKET_MINUTES, "start": start, "end": end,
    })

    quality: dict[str, dict[str, int]] = {"excluded": {}, "quarantined": {}, "held back": {}}
    if {"staging.event_outcomes", "quarantine.rejected_events"} <= views:
        for row in _rows(con, QUALITY_SQL, {
            "start": start, "end": end, "day": day,
            "hour_keys": keys_in(hourly_partitions, TimeWindow(start, end)),
        }):
            quality[row["kind"]][row["reason"]] = int(row["events"])
    if UNREAD_LANDING_FILES.qualified_name in views:
        # Not of the day: files that no day will ever count, as of the last summary.
        quality["unread files"] = {row["reason"]: int(row["files"]) for row in _rows(
            con, f"select reason, count(*) as files from {UNREAD_LANDING_FILES.qualified_name} "
            "group by reason", {})}

    notifications = []
    if MOOD_NOTIFICATIONS.qualified_name in views:
        notifications = _rows(con, f"""
            select notification_id, any_value(scenario_id) as scenario_id,
                any_value(previous_state) as previous_state, any_value(state) as state,
                any_value(as_of) as as_of, any_value(text) as text,
                count(*) filter (where status = 'delivered') as delivered,
                count(*) filter (where status in ('pending', 'sending', 'failed')) as undelivered
            from {MOOD_NOTIFICATIONS.qualified_name}
            group by notification_id
            order by as_of desc, notification_id
            limit 10
        """, {})

    return DashboardData(
        selection=Selection(day, selection.days, scenario_id),
        available_days=available,
        scenarios=scenarios,
        scenario_id=scenario_id,
        minutes=minutes,
        daily=daily,
        partners=partners[:PARTNERS_SHOWN],
        partner_count=len(partners),
        heatmap=heatmap,
        episodes=found,
        quality=quality,
        mood=mood,
        policy=policy,
        notifications=notifications,
    )
