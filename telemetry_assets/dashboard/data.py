"""What the dashboard shows, read from the warehouse in short read-only visits: the figures that
follow the latest data, and those of the selected day (which a reader may keep while their files
are unchanged)."""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
from dagster import TimeWindow

from telemetry_assets.lake import Table
from telemetry_assets.mood.burn_rates import (
    Episode,
    MoodPolicy,
    MoodReport,
    current_mood,
    episodes,
    latest_data_time,
    provisional_since,
)
from telemetry_assets.mood.pulse import Pulse, current_pulse
from telemetry_assets.partitions import hourly_partitions, keys_in
from telemetry_assets.tables import (
    ANNOTATIONS,
    CONSOLE_LINES,
    EVENT_OUTCOMES,
    JOB_RUNS,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    MOOD_NOTIFICATIONS,
    OBJECTIVE_DAILY,
    OBJECTIVES,
    REJECTED_EVENTS,
    REVISIONS,
    SCENARIO_DAILY,
    SCENARIO_MINUTE,
    SCENARIO_PARTNER_DAILY,
    SCENARIOS,
    UNREAD_LANDING_FILES,
    VALIDATED,
)

HEATMAP_BUCKET_MINUTES = 10
PARTNERS_SHOWN = 15
# A range annotation shown on a day began at most this long before it.
ANNOTATION_LOOK_BACK = timedelta(days=7)
# A batch-job run's console lines shown under it: its last ones.
CONSOLE_TAIL_LINES = 20

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
    # The day's attainment of the objectives beyond availability (slos.yaml's latency ones).
    objectives: list[dict[str, Any]] = field(default_factory=list)
    # What people and the platform noted on the day (context.annotations), oldest first.
    annotations: list[dict[str, Any]] = field(default_factory=list)
    service: str | None = None
    job_runs: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    # Damaged lake files the figures were read without, each with its repair.
    damage: tuple[str, ...] = ()
    pulse: Pulse | None = None
    # The first provisional hour, and the time its figures are as of (None: all exact).
    provisional_since: datetime | None = None
    provisional_as_of: datetime | None = None

    @property
    def day_is_provisional(self) -> bool:
        """The selected day has hours no exact run has read yet (SPEC §8)."""
        return (self.provisional_since is not None
                and self.selection.day >= self.provisional_since.date())

    @property
    def incidents(self) -> list[Episode]:
        """The day's breaching episodes: what someone was (or would have been) paged for."""
        return [episode for episode in self.episodes if episode.state == "breaching"]

    @property
    def scenario(self) -> dict[str, Any] | None:
        return next((s for s in self.scenarios if s["scenario_id"] == self.scenario_id), None)

    def scenario_of(self, subject: str) -> str:
        """The scenario a mood subject belongs to: itself, or the scenario of a latency
        objective's `scenario/objective`."""
        if any(row["scenario_id"] == subject for row in self.scenarios):
            return subject
        return subject.rpartition("/")[0] or subject

    @property
    def chart_annotations(self) -> list[dict[str, Any]]:
        """The day's annotations about the zoomed scenario: for all, its service or itself."""
        wanted = {("scenario", (self.scenario_id or "").lower()),
                  ("service", (self.service or "").lower())}
        return [row for row in self.annotations if row["scope"] == "all"
                or (row["scope"], (row["scope_value"] or "").lower()) in wanted]

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


@dataclass(frozen=True)
class LiveFigures:
    """What does not depend on the selected day: which days exist, the mood now, the latest
    notifications, the landing files no day counts."""

    available_days: list[date]
    mood: MoodReport | None
    notifications: list[dict[str, Any]]
    unread_files: dict[str, int]
    pulse: Pulse | None = None
    provisional_since: datetime | None = None
    provisional_as_of: datetime | None = None


@dataclass(frozen=True)
class DayFigures:
    """Every figure of one selected day (and the days before it that the page shows)."""

    selection: Selection
    scenarios: list[dict[str, Any]]
    minutes: list[dict[str, Any]]
    daily: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    heatmap: list[dict[str, Any]]
    episodes: list[Episode]
    quality: dict[str, dict[str, int]]
    objectives: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    # The zoomed scenario's service, for the annotations scoped to it.
    service: str | None = None
    # The batch-job runs that started on the day, each with the tail of its console.
    job_runs: list[dict[str, Any]] = field(default_factory=list)
    # Re-publications of the day that changed a scenario's figures, newest first.
    revisions: list[dict[str, Any]] = field(default_factory=list)


def _day_window(day: date) -> TimeWindow:
    start = datetime.combine(day, time())
    return TimeWindow(start, start + timedelta(days=1))


def live_reads() -> dict[Table, TimeWindow | None]:
    """The partitions `gather_live` reads (None: all of them)."""
    return {SCENARIO_DAILY: None, MINUTE_AGGREGATE: None, MINUTE_LATENCY: None, SCENARIOS: None,
            OBJECTIVES: None, MOOD_NOTIFICATIONS: None, UNREAD_LANDING_FILES: None}


def day_reads(selection: Selection, policy: MoodPolicy) -> dict[Table, TimeWindow | None]:
    """The partitions `gather_day` reads for the selection: a change to any other partition
    leaves its figures as they were."""
    day = _day_window(selection.day)
    first_daily = min(selection.first_day,
                      selection.day - timedelta(days=budget_days(policy) - 1))
    # An evaluation at a minute of the day looks back over the policy's longest window.
    looked_back = timedelta(minutes=max(policy.window_minutes))
    return {
        SCENARIO_DAILY: TimeWindow(datetime.combine(first_daily, time()), day.end),
        SCENARIO_MINUTE: day,
        SCENARIO_PARTNER_DAILY: day,
        MINUTE_AGGREGATE: TimeWindow(day.start - looked_back, day.end),
        MINUTE_LATENCY: TimeWindow(day.start - looked_back, day.end),
        OBJECTIVE_DAILY: day,
        SCENARIOS: None,
        OBJECTIVES: None,
        EVENT_OUTCOMES: day,
        REJECTED_EVENTS: day,
        VALIDATED: day,
        ANNOTATIONS: TimeWindow(day.start - ANNOTATION_LOOK_BACK, day.end),
        JOB_RUNS: day,
        CONSOLE_LINES: day,
        REVISIONS: day,
    }


def gather_live(con: duckdb.DuckDBPyConnection, policy: MoodPolicy) -> LiveFigures:
    """The figures that follow the latest data, whatever day is selected."""
    views = _views(con)
    mood = pulse = None
    if {"aggregate.minute_aggregate", "reference.scenarios"} <= views:
        mood = current_mood(con, policy)
        pulse = current_pulse(con, policy)
    unread: dict[str, int] = {}
    if UNREAD_LANDING_FILES.qualified_name in views:
        # Not of the day: files that no day will ever count, as of the last summary.
        unread = {row["reason"]: int(row["files"]) for row in _rows(
            con, f"select reason, count(*) as files from {UNREAD_LANDING_FILES.qualified_name} "
            "group by reason", {})}
    notifications = []
    if MOOD_NOTIFICATIONS.qualified_name in views:
        # The mood of all traffic: a partner's own is for its routes, and would crowd it out.
        columns = {name for (name,) in con.execute(
            "select column_name from duckdb_columns() where schema_name = ? and table_name = ?",
            [MOOD_NOTIFICATIONS.schema, MOOD_NOTIFICATIONS.name]).fetchall()}
        all_traffic = "where partner_id is null" if "partner_id" in columns else ""
        notifications = _rows(con, f"""
            select notification_id, any_value(scenario_id) as scenario_id,
                any_value(previous_state) as previous_state, any_value(state) as state,
                any_value(as_of) as as_of, any_value(text) as text,
                count(*) filter (where status = 'delivered') as delivered,
                count(*) filter (where status in ('pending', 'sending', 'failed')) as undelivered
            from {MOOD_NOTIFICATIONS.qualified_name}
            {all_traffic}
            group by notification_id
            order by as_of desc, notification_id
            limit 10
        """, {})
    since = provisional_since(con)
    return LiveFigures(published_days(con), mood, notifications, unread, pulse, since,
                       latest_data_time(con) if since else None)


def gather_day(con: duckdb.DuckDBPyConnection, selection: Selection,
               policy: MoodPolicy) -> DayFigures:
    """The figures of the selected day; the scenario zoomed into defaults to the day's longest
    incident, else its lowest availability."""
    day = selection.day
    start, end = _day_window(day)
    views = _views(con)

    scenarios = _rows(con, SCENARIOS_SQL, {
        "day": day, "first_day": selection.first_day, "budget_days": budget_days(policy),
    })
    for row in scenarios:
        allowed = row["budget_allowed"]
        row["budget_remaining_pct"] = (
            100.0 * (1 - row["budget_failed"] / allowed) if allowed else None
        )
    found = []
    if {"aggregate.minute_aggregate", "reference.scenarios"} <= views:
        # Today's episodes end with its data, not at midnight.
        latest = latest_data_time(con)
        found = episodes(con, policy, start, min(end, latest) if latest else end)

    on_day = [row for row in scenarios if row["day_requests"] is not None]
    known = {row["scenario_id"] for row in on_day}
    paged: dict[str, int] = {}
    for episode in found:
        if episode.state == "breaching":
            # A latency objective's episodes are under its subject id, `scenario/objective`.
            scenario = (episode.scenario_id if episode.scenario_id in known
                        else episode.scenario_id.rpartition("/")[0])
            paged[scenario] = paged.get(scenario, 0) + episode.minutes
    paged = {scenario: minutes for scenario, minutes in paged.items() if scenario in known}
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

    objectives = []
    if OBJECTIVE_DAILY.qualified_name in views:
        objectives = _rows(con, f"""
            select scenario_id || '/' || objective as subject, scenario_id, objective, kind,
                threshold_ms, target_pct, total_requests, good_requests, attainment_pct,
                attainment_error_pct, objective_met
            from {OBJECTIVE_DAILY.qualified_name}
            where date = cast($day as date) and kind <> 'availability'
            order by objective_met, attainment_pct - target_pct, scenario_id, objective
        """, {"day": day})

    annotations = []
    if ANNOTATIONS.qualified_name in views:
        annotations = _rows(con, f"""
            select annotation_id, starts_at, ends_at, scope, scope_value, kind, text, source,
                link
            from {ANNOTATIONS.qualified_name}
            where starts_at < cast($end as timestamp)
                -- a range is half-open; a moment is in the day when it starts in it
                and case when ends_at is null then starts_at >= cast($start as timestamp)
                    else ends_at > cast($start as timestamp) end
            order by starts_at, created_at, annotation_id
        """, {"start": start, "end": end})
    job_runs = []
    if JOB_RUNS.qualified_name in views:
        job_runs = _rows(con, f"""
            select run_id, scenario_id, command, started_at, ended_at, exit_status, succeeded,
                lines
            from {JOB_RUNS.qualified_name}
            where started_at >= cast($start as timestamp) and started_at < cast($end as timestamp)
            order by started_at, run_id
        """, {"start": start, "end": end})
    tails: dict[str, list[dict[str, Any]]] = {}
    if job_runs and CONSOLE_LINES.qualified_name in views:
        for row in _rows(con, f"""
            select run_id, line_number, stream, logged_at, text from (
                select *, row_number() over (partition by run_id order by line_number desc)
                    as from_end
                from {CONSOLE_LINES.qualified_name}
                where list_contains($runs, run_id))
            where from_end <= $tail
            order by run_id, line_number
        """, {"runs": [run["run_id"] for run in job_runs], "tail": CONSOLE_TAIL_LINES}):
            tails.setdefault(row["run_id"], []).append(row)
    for run in job_runs:
        run["console_tail"] = tails.get(run["run_id"], [])
    revisions = []
    if REVISIONS.qualified_name in views:
        revisions = _rows(con, f"""
            select scenario_id, revised_at, availability_pct_before, availability_pct,
                total_requests_before, total_requests, reason
            from {REVISIONS.qualified_name}
            where date = cast($day as date)
            order by revised_at desc, scenario_id
        """, {"day": day})
    service = None
    if scenario_id and SCENARIOS.qualified_name in views:
        found_service = con.execute(
            f"select max(service) from {SCENARIOS.qualified_name} where scenario_id = $id",
            {"id": scenario_id}).fetchone()
        service = found_service[0] if found_service else None

    return DayFigures(
        selection=Selection(day, selection.days, scenario_id),
        scenarios=scenarios,
        minutes=minutes,
        daily=daily,
        partners=partners,
        heatmap=heatmap,
        episodes=found,
        quality=quality,
        objectives=objectives,
        annotations=annotations,
        service=service,
        job_runs=job_runs,
        revisions=revisions,
    )


def latest_selection(live: LiveFigures, selection: Selection | None) -> Selection:
    """The reader's selection (default: the latest published day), once it is known to exist."""
    if not live.available_days:
        raise NoData("nothing is published yet: run the pipeline first (make demo)")
    selection = selection or Selection(live.available_days[0])
    if selection.day not in live.available_days:
        raise NoData(f"nothing is published for {selection.day}")
    return selection


def compose(live: LiveFigures, day: DayFigures, policy: MoodPolicy,
            damage: tuple[str, ...] = ()) -> DashboardData:
    """The page's figures from its two parts."""
    quality = dict(day.quality)
    if live.unread_files:
        quality["unread files"] = live.unread_files
    return DashboardData(
        selection=day.selection,
        available_days=live.available_days,
        scenarios=day.scenarios,
        scenario_id=day.selection.scenario_id,
        minutes=day.minutes,
        daily=day.daily,
        partners=day.partners[:PARTNERS_SHOWN],
        partner_count=len(day.partners),
        heatmap=day.heatmap,
        episodes=day.episodes,
        quality=quality,
        mood=live.mood,
        policy=policy,
        notifications=live.notifications,
        objectives=day.objectives,
        annotations=day.annotations,
        service=day.service,
        job_runs=day.job_runs,
        revisions=day.revisions,
        damage=damage,
        pulse=live.pulse,
        provisional_since=live.provisional_since,
        provisional_as_of=live.provisional_as_of,
    )


def gather(con: duckdb.DuckDBPyConnection, selection: Selection | None,
           policy: MoodPolicy) -> DashboardData:
    """Read every figure for the selection (default: the latest published day, its week)."""
    live = gather_live(con, policy)
    return compose(live, gather_day(con, latest_selection(live, selection), policy), policy)
