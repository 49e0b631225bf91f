"""Service mood: error budgets and multi-window burn rates (SRE workbook, chapter 5) per scenario.

A scenario is *breaching* when a page rule fires, *degraded* when a ticket rule fires or its
budget window has spent more than its error budget, and *healthy* otherwise. A rule fires when
the burn rate (error rate divided by the error budget 1 - SLO) reaches its threshold over both
its long and its short window. A window with fewer requests than the configured minimum is not
judged, and a rule one of whose windows is not judged cannot fire: a few requests say too
little to page anyone.

The counting is SQL over `aggregate.minute_aggregate` and `reference.scenarios` (the warehouse
views); every evaluation instant `as_of` is the exclusive end of its windows.
"""

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from telemetry_core.sql import (
    BUCKET_LATENCY_SQL,
    LATENCY_GROWTH,
    ZERO_LATENCY_BUCKET,
    ceil_minute,
    utc_naive,
)

STATES = ("healthy", "degraded", "breaching")
SEVERITY_STATE = {"page": "breaching", "ticket": "degraded"}

_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_duration(text: str) -> int:
    """Minutes in a duration written `5m`, `6h` or `3d`."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 5m, 6h or 3d")
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2)]


def format_duration(minutes: int) -> str:
    """The shortest of `3d`, `6h`, `5m` that states `minutes` exactly."""
    for unit in ("d", "h"):
        if minutes % _UNIT_MINUTES[unit] == 0:
            return f"{minutes // _UNIT_MINUTES[unit]}{unit}"
    return f"{minutes}m"


@dataclass(frozen=True)
class BurnRule:
    """Fire when the burn rate reaches `threshold` over both windows (minutes)."""

    severity: str
    threshold: float
    long_minutes: int
    short_minutes: int

    @property
    def name(self) -> str:
        return (f"{self.severity} {self.threshold:g}x over {format_duration(self.long_minutes)}"
                f" and {format_duration(self.short_minutes)}")

    @classmethod
    def parse(cls, text: str) -> "BurnRule":
        """`page:14.4:1h:5m` → severity, threshold, long window, short window."""
        parts = [part.strip() for part in text.split(":")]
        if len(parts) != 4 or parts[0] not in SEVERITY_STATE:
            raise ValueError(
                f"{text!r} is not a rule such as page:14.4:1h:5m (severity page or ticket)"
            )
        threshold = float(parts[1])
        if not threshold > 0:
            raise ValueError(f"{text!r}: the burn-rate threshold must be positive")
        return cls(parts[0], threshold, parse_duration(parts[2]), parse_duration(parts[3]))


DEFAULT_RULES = (
    BurnRule("page", 14.4, 60, 5),
    BurnRule("page", 6.0, 360, 30),
    BurnRule("ticket", 1.0, 4320, 360),
)


@dataclass(frozen=True)
class MoodPolicy:
    """The burn-rate rules, the low-traffic minimum and the error-budget window."""

    rules: tuple[BurnRule, ...] = DEFAULT_RULES
    min_requests: int = 100
    budget_minutes: int = 28 * 1440

    @property
    def window_minutes(self) -> list[int]:
        """Every window the rules and the budget need, shortest first."""
        return sorted({self.budget_minutes}
                      | {m for rule in self.rules for m in (rule.long_minutes, rule.short_minutes)})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "MoodPolicy":
        """TELEMETRY_MOOD_RULES, TELEMETRY_MOOD_MIN_REQUESTS and TELEMETRY_MOOD_BUDGET_WINDOW."""
        env = os.environ if environ is None else environ
        rules_text = env.get("TELEMETRY_MOOD_RULES", "").strip()
        rules = (tuple(BurnRule.parse(part) for part in rules_text.split(",") if part.strip())
                 if rules_text else DEFAULT_RULES)
        minimum = env.get("TELEMETRY_MOOD_MIN_REQUESTS", "").strip()
        budget = env.get("TELEMETRY_MOOD_BUDGET_WINDOW", "").strip()
        policy = cls(
            rules=rules,
            min_requests=int(minimum) if minimum else cls.min_requests,
            budget_minutes=parse_duration(budget) if budget else cls.budget_minutes,
        )
        if policy.min_requests < 1:
            raise ValueError("TELEMETRY_MOOD_MIN_REQUESTS must be at least 1")
        return policy


@dataclass(frozen=True)
class WindowFigures:
    """Requests and failures of one scenario over one window ending at the evaluation instant."""

    minutes: int
    requests: int
    failed: int
    judged: bool
    burn_rate: float | None

    @property
    def name(self) -> str:
        return format_duration(self.minutes)

    @property
    def availability_pct(self) -> float | None:
        return 100.0 * (self.requests - self.failed) / self.requests if self.requests else None


@dataclass(frozen=True)
class ScenarioMood:
    """One scenario's state at `as_of`, with the figures that decided it."""

    scenario_id: str
    scenario_name: str
    slo_target_pct: float
    as_of: datetime
    state: str
    firing: tuple[str, ...]
    windows: dict[str, WindowFigures]
    budget_minutes: int
    # Judged on hours no exact run has read yet (SPEC §8).
    provisional: bool = False
    # A latency objective's mood is judged on the share of requests over `threshold_ms`, under
    # the subject id `scenario/objective` in scenario_id.
    kind: str = "availability"
    threshold_ms: float | None = None

    @property
    def objective_label(self) -> str:
        """What is judged, as a person reads it."""
        return (f"latency at or under {self.threshold_ms:g} ms" if self.kind == "latency"
                else "availability")

    @property
    def budget(self) -> WindowFigures:
        return self.windows[format_duration(self.budget_minutes)]

    @property
    def allowed_failures(self) -> float:
        return self.budget.requests * (100.0 - self.slo_target_pct) / 100.0

    @property
    def budget_remaining_pct(self) -> float | None:
        """Share of the budget window's error budget not yet spent; negative when overspent."""
        if not self.budget.requests:
            return None
        if self.allowed_failures == 0:
            return 100.0 if self.budget.failed == 0 else -math.inf
        return 100.0 * (1.0 - self.budget.failed / self.allowed_failures)


@dataclass(frozen=True)
class MoodReport:
    """Every reference scenario's mood at one instant, and the overall state (the worst)."""

    as_of: datetime
    policy: MoodPolicy
    scenarios: list[ScenarioMood] = field(default_factory=list)
    # None: the mood of all traffic; else the partner whose requests alone were judged.
    partner_id: str | None = None

    @property
    def overall(self) -> str:
        return max((s.state for s in self.scenarios), key=STATES.index, default="healthy")

    @property
    def provisional(self) -> bool:
        return any(s.provisional for s in self.scenarios)

    def counts(self) -> dict[str, int]:
        return {state: sum(s.state == state for s in self.scenarios) for state in STATES}

    def overall_burn_rates(self) -> dict[str, float | None]:
        """Burn rate of all traffic together against the sum of the scenarios' budgets."""
        rates: dict[str, float | None] = {}
        for minutes in self.policy.window_minutes:
            name = format_duration(minutes)
            failed = sum(s.windows[name].failed for s in self.scenarios)
            allowed = sum(s.windows[name].requests * (100.0 - s.slo_target_pct) / 100.0
                          for s in self.scenarios)
            rates[name] = failed / allowed if allowed else None
        return rates

    def worst_first(self) -> list[ScenarioMood]:
        def key(mood: ScenarioMood):
            remaining = mood.budget_remaining_pct
            return (-STATES.index(mood.state), math.inf if remaining is None else remaining,
                    mood.scenario_id)

        return sorted(self.scenarios, key=key)


# The reference scenarios (all, or the one named by $scenario_id), with the key that events'
# scenario ids match on: they arrive in any case.
SCENARIO_REFERENCE_CTE = """
scenario_reference as (
    select
        lower(trim(scenario_id)) as match_key,
        scenario_id,
        scenario_name,
        cast(slo_target_pct as double) as slo_target_pct
    from reference.scenarios
    where $scenario_id is null or scenario_id = $scenario_id
)"""

# Cumulative counts before each window bound make any window a difference of two equality
# lookups, so a day of per-minute evaluations costs little more than one, and the cost follows
# the minutes that have traffic rather than the length of the longest window. An hour in which
# no window bound falls (strictly after its start) counts as one point at its start: every
# window holds all of it or none of it, so the counts are exact, and a 28-day window adds ~700
# points per scenario rather than ~40,000.
# What a mood is judged on: each reference scenario's availability, under the scenario's id,
# and each latency objective of reference.objectives, under its subject id (scenario/name).
SUBJECTS_CTE = """
subjects as (
    -- A partner's own mood is judged against its commitment where it has one ($targets).
    select
        s.match_key, s.subject, s.scenario_name,
        coalesce(t.target_pct, s.slo_target_pct) as slo_target_pct, s.kind, s.threshold_ms
    from (
        select
            match_key, scenario_id as subject, scenario_name, slo_target_pct,
            'availability' as kind, cast(null as double) as threshold_ms
        from scenario_reference
        {latency_subjects}
    ) as s
    left join (
        select
            unnest(cast($target_subjects as varchar[])) as subject,
            unnest(cast($target_pcts as double[])) as target_pct
    ) as t on s.subject = t.subject
)"""

LATENCY_SUBJECTS = """
    union all
    select
        s.match_key, o.subject, s.scenario_name, cast(o.target_pct as double), o.kind,
        cast(o.threshold_ms as double)
    from reference.objectives as o
    inner join scenario_reference as s on o.scenario_id = s.scenario_id
    where o.kind = 'latency'"""

# A latency objective's failures are its minutes' requests over the threshold, judged per
# bucket as published.objective_daily judges them: by the bucket's representative latency.
LATENCY_POINTS = """
    union all
    select s.subject, m.minute, sum(m.requests) as requests,
        sum(case when """ + BUCKET_LATENCY_SQL + """ > s.threshold_ms
            then m.requests else 0 end) as failed
    from (
        select
            m.scenario_id,
            m.latency_bucket,
            case when h.hour is null then cast(date_trunc('hour', m.minute) as timestamp)
                else m.minute end as minute,
            sum(m.requests) as requests
        from aggregate.minute_latency as m
        -- Only the rows of scenarios with a latency objective are summed: their ids as the
        -- events spell them are few, so the join costs a hash probe a row, not a grouping.
        inner join (
            select distinct r.scenario_id
            from raw_points as r
            inner join subjects as s
                on lower(trim(r.scenario_id)) = s.match_key and s.kind = 'latency'
        ) as k on m.scenario_id = k.scenario_id
        left join split_hours as h on cast(date_trunc('hour', m.minute) as timestamp) = h.hour
        where
            m.minute >= cast($first_as_of as timestamp) - to_minutes(cast($longest as bigint))
            and m.minute < cast($last_as_of as timestamp)
            and ($partner_id is null or lower(trim(m.partner_id)) = lower(trim($partner_id)))
        group by all
    ) as m
    inner join subjects as s on lower(trim(m.scenario_id)) = s.match_key and s.kind = 'latency'
    group by all"""

WINDOW_COUNTS_SQL = "with " + SCENARIO_REFERENCE_CTE + "," + SUBJECTS_CTE + """,

lookups as materialized (
    select
        s.subject as scenario_id,
        s.scenario_name,
        s.slo_target_pct,
        s.kind,
        s.threshold_ms,
        i.as_of,
        w.window_minutes,
        i.as_of - to_minutes(w.window_minutes) as window_start
    from subjects as s
    cross join (
        -- Every whole minute from the first instant, and the last one: a provisional reading
        -- is judged at the instant its refresh listed the files, the minute in progress counted.
        select unnest(generate_series(
            cast($first_as_of as timestamp), cast($last_as_of as timestamp), interval 1 minute
        )) as as_of
        union
        select cast($last_as_of as timestamp)
    ) as i
    cross join (select unnest($window_minutes) as window_minutes) as w
),

split_hours as (
    -- The hours a window bound cuts: counted minute by minute.
    select distinct cast(date_trunc('hour', bound) as timestamp) as hour
    from (
        select as_of as bound from lookups
        union all
        select window_start from lookups
    )
    where bound <> date_trunc('hour', bound)
),

raw_points as materialized (
    -- Summed under the events' own ids first: matching ids to the reference costs a string
    -- operation a row, so it is done once per id and point rather than once per minute row.
    select
        m.scenario_id,
        case when h.hour is null then cast(date_trunc('hour', m.minute) as timestamp)
            else m.minute end as minute,
        sum(m.total_requests) as requests,
        sum(m.failed_requests) as failed
    from aggregate.minute_aggregate as m
    left join split_hours as h on cast(date_trunc('hour', m.minute) as timestamp) = h.hour
    where
        m.minute >= cast($first_as_of as timestamp) - to_minutes(cast($longest as bigint))
        and m.minute < cast($last_as_of as timestamp)
        -- A partner's own mood: judged over that partner's requests only.
        and ($partner_id is null or lower(trim(m.partner_id)) = lower(trim($partner_id)))
    group by all
),

per_point as (
    select s.subject as scenario_id, m.minute, sum(m.requests) as requests,
        sum(m.failed) as failed
    from raw_points as m
    inner join subjects as s
        on lower(trim(m.scenario_id)) = s.match_key and s.kind = 'availability'
    group by all
    {latency_points}
),

points as (
    -- Every point with traffic, and every window bound looked up below.
    select scenario_id, minute, sum(requests) as requests, sum(failed) as failed
    from (
        select scenario_id, minute, requests, failed from per_point
        union all
        select scenario_id, as_of, 0, 0 from lookups
        union all
        select scenario_id, window_start, 0, 0 from lookups
    )
    group by scenario_id, minute
),

before as (
    select
        scenario_id,
        minute,
        coalesce(sum(requests) over earlier, 0) as requests_before,
        coalesce(sum(failed) over earlier, 0) as failed_before
    from points
    window earlier as (
        partition by scenario_id order by minute
        rows between unbounded preceding and 1 preceding
    )
),

counts as (
    select
        l.scenario_id,
        l.scenario_name,
        l.slo_target_pct,
        l.kind,
        l.threshold_ms,
        l.as_of,
        l.window_minutes,
        cast(e.requests_before - b.requests_before as bigint) as requests,
        cast(e.failed_before - b.failed_before as bigint) as failed
    from lookups as l
    inner join before as e on l.scenario_id = e.scenario_id and l.as_of = e.minute
    inner join before as b on l.scenario_id = b.scenario_id and l.window_start = b.minute
)

select
    *,
    requests >= $min_requests as judged,
    -- A 100 % objective leaves no budget to burn: its burn rate is undefined (null).
    failed / nullif(requests, 0) / nullif((100 - slo_target_pct) / 100, 0) as burn_rate
from counts
"""

STATES_SQL = """
with rules as (
    select
        unnest($rule_names) as rule_name,
        unnest($rule_severities) as severity,
        unnest($rule_thresholds) as threshold,
        unnest($rule_long) as long_minutes,
        unnest($rule_short) as short_minutes
),

fired as (
    select l.scenario_id, l.as_of, r.rule_name, r.severity
    from rules as r
    inner join mood_window_counts as l on l.window_minutes = r.long_minutes
    inner join mood_window_counts as s
        on
            s.scenario_id = l.scenario_id
            and s.as_of = l.as_of
            and s.window_minutes = r.short_minutes
    where l.judged and s.judged and l.burn_rate >= r.threshold and s.burn_rate >= r.threshold
),

budget as (
    select
        scenario_id,
        as_of,
        judged and failed > requests * (100 - slo_target_pct) / 100 as budget_spent
    from mood_window_counts
    where window_minutes = $budget_minutes
)

select
    b.scenario_id,
    b.as_of,
    case
        when count(case when f.severity = 'page' then 1 end) > 0 then 'breaching'
        when count(case when f.severity = 'ticket' then 1 end) > 0 or b.budget_spent
            then 'degraded'
        else 'healthy'
    end as state,
    coalesce(string_agg(f.rule_name, '|' order by f.rule_name), '') as firing,
    b.budget_spent
from budget as b
left join fired as f on b.scenario_id = f.scenario_id and b.as_of = f.as_of
group by b.scenario_id, b.as_of, b.budget_spent
"""


def evaluate(
    con: duckdb.DuckDBPyConnection,
    policy: MoodPolicy,
    first_as_of: datetime,
    last_as_of: datetime | None = None,
    scenario_id: str | None = None,
    partner_id: str | None = None,
    targets: Mapping[str, float] | None = None,
) -> duckdb.DuckDBPyRelation:
    """States at every whole minute in [first_as_of, last_as_of] and at last_as_of; counts left
    in `mood_window_counts`. With `partner_id`, the partner's own mood (its requests only),
    against `targets` (subject -> target %) where given.

    `con` is a warehouse connection (read-only is fine: only temporary tables are created).
    """
    last = utc_naive(last_as_of or first_as_of)
    first = min(ceil_minute(utc_naive(first_as_of)), last)
    windows = policy.window_minutes
    latency = _has_latency_objectives(con)
    params = {
        "first_as_of": first,
        "last_as_of": last,
        "longest": max(windows),
        "window_minutes": windows,
        "min_requests": policy.min_requests,
        "scenario_id": scenario_id,
        "partner_id": partner_id,
        "target_subjects": list(targets or {}),
        "target_pcts": [float(t) for t in (targets or {}).values()],
    }
    if latency:
        params |= {"latency_growth": LATENCY_GROWTH, "zero_bucket": ZERO_LATENCY_BUCKET}
    con.execute(
        "create or replace temp table mood_window_counts as "
        + WINDOW_COUNTS_SQL.replace("{latency_subjects}", LATENCY_SUBJECTS if latency else "")
        .replace("{latency_points}", LATENCY_POINTS if latency else ""),
        params,
    )
    return con.sql(
        STATES_SQL,
        params={
            "rule_names": [rule.name for rule in policy.rules],
            "rule_severities": [rule.severity for rule in policy.rules],
            "rule_thresholds": [rule.threshold for rule in policy.rules],
            "rule_long": [rule.long_minutes for rule in policy.rules],
            "rule_short": [rule.short_minutes for rule in policy.rules],
            "budget_minutes": policy.budget_minutes,
        },
    )


def _has_latency_objectives(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the reference objectives (a lake older than them has none) include latency."""
    if not con.execute("select 1 from duckdb_views() where schema_name = 'reference' "
                       "and view_name = 'objectives'").fetchall():
        return False
    return bool(con.execute(
        "select 1 from reference.objectives where kind = 'latency' limit 1").fetchall())


def _has_provisional_hours(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this reading has provisional hours (telemetry_assets/live.read_current)."""
    return bool(con.execute(
        "select 1 from duckdb_views() where schema_name = 'live' and view_name = 'refreshes'"
    ).fetchall())


def latest_data_time(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The end of the latest hour with exact minute aggregates (the exact runs process whole
    hours), or, on a reading with provisional hours, the time their latest refresh listed the
    landing files, if later."""
    provisional = _has_provisional_hours(con)
    ((latest,),) = con.execute(
        "select date_trunc('hour', max(minute)) + interval 1 hour "
        "from aggregate.minute_aggregate"
        + (" where cast(date_trunc('hour', minute) as timestamp) not in "
           "(select hour from live.refreshes)" if provisional else "")
    ).fetchall()
    if provisional:
        ((as_of,),) = con.execute("select max(as_of) from live.refreshes").fetchall()
        if as_of is not None and (latest is None or as_of > latest):
            return as_of
    return latest


def provisional_since(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The start of the first provisional hour on this reading (None when every figure is
    exact): figures from then on are replaced when their hours are run."""
    if not _has_provisional_hours(con):
        return None
    return con.execute("select min(hour) from live.refreshes").fetchall()[0][0]


def current_mood(
    con: duckdb.DuckDBPyConnection, policy: MoodPolicy, as_of: datetime | None = None,
    partner_id: str | None = None, targets: Mapping[str, float] | None = None,
) -> MoodReport | None:
    """Every scenario's mood at `as_of` (default: the latest data); with `partner_id`, that
    partner's own, against `targets` (its commitments) where given."""
    as_of = as_of or latest_data_time(con)
    if as_of is None:
        return None
    as_of = utc_naive(as_of)
    since = provisional_since(con)
    states = {
        row[0]: row[1:]
        for row in evaluate(con, policy, as_of, partner_id=partner_id, targets=targets)
        .project("scenario_id, state, firing").fetchall()
    }
    figures: dict[str, dict[str, WindowFigures]] = {}
    names: dict[str, tuple[str, float, str, float | None]] = {}
    for scenario, name, slo, kind, threshold, minutes, requests, failed, judged, burn in con.sql(
        "select scenario_id, scenario_name, slo_target_pct, kind, threshold_ms, window_minutes, "
        "requests, failed, judged, burn_rate from mood_window_counts "
        "order by scenario_id, window_minutes"
    ).fetchall():
        names[scenario] = (name, slo, kind, threshold)
        figures.setdefault(scenario, {})[format_duration(minutes)] = WindowFigures(
            minutes, requests, failed, judged, burn
        )
    return MoodReport(
        as_of=as_of,
        policy=policy,
        partner_id=partner_id,
        scenarios=[
            ScenarioMood(
                scenario_id=scenario,
                scenario_name=names[scenario][0],
                slo_target_pct=names[scenario][1],
                as_of=as_of,
                state=state,
                firing=tuple(firing.split("|")) if firing else (),
                windows=figures[scenario],
                budget_minutes=policy.budget_minutes,
                provisional=since is not None and as_of > since,
                kind=names[scenario][2],
                threshold_ms=names[scenario][3],
            )
            for scenario, (state, firing) in sorted(states.items())
        ],
    )


def changing_instants(
    con: duckdb.DuckDBPyConnection, policy: MoodPolicy, after: datetime, until: datetime,
    partner_id: str | None = None, targets: Mapping[str, float] | None = None,
) -> list[datetime]:
    """The minutes in (after, until] at which some scenario's state differs from the minute
    before, and `until` itself: the instants whose moods say every change since `after`, each
    at the minute it happened, however short the episode."""
    after, until = utc_naive(after), utc_naive(until)
    if until <= after:
        return []
    changed = evaluate(con, policy, after, until, partner_id=partner_id,
                       targets=targets).query(
        "mood_states",
        """
        select distinct as_of from (
            select as_of,
                state <> lag(state) over (partition by scenario_id order by as_of) as changed
            from mood_states
        )
        where changed
        """,
    ).fetchall()
    return sorted({as_of for (as_of,) in changed} | {until})


@dataclass(frozen=True)
class Episode:
    """A run of consecutive minutes in which a scenario stayed breaching, or stayed degraded."""

    scenario_id: str
    state: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def episodes(
    con: duckdb.DuckDBPyConnection, policy: MoodPolicy, start: datetime, end: datetime,
    scenario_id: str | None = None,
) -> list[Episode]:
    """Periods in [start, end) in which scenarios were breaching or degraded, minute by minute.

    An episode covers the minutes whose ends were evaluated in its state: it starts one minute
    before the first such evaluation and ends at the last.
    """
    start, end = utc_naive(start), utc_naive(end)
    relation = evaluate(con, policy, start + timedelta(minutes=1), end, scenario_id)
    found = relation.query(
        "mood_states",
        """
        with marked as (
            select scenario_id, as_of, state,
                state <> lag(state, 1, 'healthy') over by_time as begins
            from mood_states
            window by_time as (partition by scenario_id order by as_of)
        ),
        numbered as (
            select *, sum(case when begins then 1 else 0 end) over (
                partition by scenario_id order by as_of
                rows between unbounded preceding and current row) as run
            from marked
        )
        select scenario_id, state, min(as_of) - interval 1 minute as first_minute,
            max(as_of) as last_as_of
        from numbered
        where state <> 'healthy'
        group by scenario_id, run, state
        order by first_minute, scenario_id
        """,
    ).fetchall()
    return [Episode(scenario, state, first, last) for scenario, state, first, last in found]


def describe(mood: ScenarioMood, rules: Sequence[BurnRule],
             escape: Callable[[str], str] = str) -> str:
    """One line a person reads in a chat channel; `escape` keeps the reference's id and name
    from being read as the channel's markup."""
    label = f"{escape(mood.scenario_id)} ({escape(mood.scenario_name)})"
    if mood.kind != "availability":
        label = (f"{escape(mood.scenario_id)} ({escape(mood.scenario_name)}, "
                 f"{mood.objective_label})")
    budget = mood.budget_remaining_pct
    budget_text = (f"{budget:.1f}% of its {format_duration(mood.budget_minutes)} error budget "
                   "left" if budget is not None and math.isfinite(budget) else
                   "no error budget figure")
    when = f"as of {mood.as_of:%Y-%m-%d %H:%M} UTC" + (" (provisional)" if mood.provisional
                                                       else "")
    if mood.state == "healthy":
        return f"{label} is healthy again: no burn-rate rule fires; {budget_text}, {when}."
    parts = []
    for rule in rules:
        if rule.name in mood.firing:
            long = mood.windows[format_duration(rule.long_minutes)].burn_rate
            short = mood.windows[format_duration(rule.short_minutes)].burn_rate
            parts.append(
                f"burning {long:.1f}x over {format_duration(rule.long_minutes)} and {short:.1f}x "
                f"over {format_duration(rule.short_minutes)} ({rule.severity} at "
                f"{rule.threshold:g}x)"
            )
    if not parts:
        parts.append("its error budget is spent")
    return f"{label} is {mood.state}: {'; '.join(parts)}; {budget_text}, {when}."
