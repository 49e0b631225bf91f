"""The pulse: each scenario's service level over the last 10 minutes, and its overall level over
the error-budget window against its SLO, in the words a person reads at a glance:

    Purchase quote: 99.9 % (5 failed of 5,000 in the last 10 min) · overall 99.99 %, within SLA

Read from `aggregate.minute_aggregate` up to the end of the latest data, like the mood: on a
reading with provisional hours (telemetry_assets/live.read_current) that is the last refresh of
the open hour, and the pulse says it is provisional; `as_of` says how fresh it is.
"""

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import duckdb

from telemetry_assets.mood.burn_rates import (
    SCENARIO_REFERENCE_CTE,
    MoodPolicy,
    format_duration,
    latest_data_time,
    provisional_since,
)
from telemetry_core.sql import utc_naive

PULSE_MINUTES = 10

PULSE_SQL = "with " + SCENARIO_REFERENCE_CTE + """,

recent as (
    select
        s.scenario_id,
        m.minute >= cast($as_of as timestamp) - to_minutes(cast($pulse_minutes as bigint))
            as in_pulse,
        m.total_requests,
        m.failed_requests
    from aggregate.minute_aggregate as m
    inner join scenario_reference as s on lower(trim(m.scenario_id)) = s.match_key
    where
        m.minute >= cast($as_of as timestamp) - to_minutes(cast($budget_minutes as bigint))
        and m.minute < cast($as_of as timestamp)
)

select
    s.scenario_id,
    s.scenario_name,
    s.slo_target_pct,
    cast(coalesce(sum(case when r.in_pulse then r.total_requests end), 0) as bigint)
        as requests,
    cast(coalesce(sum(case when r.in_pulse then r.failed_requests end), 0) as bigint)
        as failed,
    cast(coalesce(sum(r.total_requests), 0) as bigint) as overall_requests,
    cast(coalesce(sum(r.failed_requests), 0) as bigint) as overall_failed
from scenario_reference as s
left join recent as r on s.scenario_id = r.scenario_id
group by s.scenario_id, s.scenario_name, s.slo_target_pct
order by s.scenario_id
"""


def _level(requests: int, failed: int) -> float | None:
    return 100.0 * (requests - failed) / requests if requests else None


def _pct(value: float | None) -> str:
    """Enough digits to tell 99.9 from 99.99, none that say nothing: 100 %, 99.95 %."""
    if value is None:
        return "no traffic"
    missing = round(100.0 - value, 9)
    if missing <= 0:
        return "100 %"
    # As many decimals as the first significant digit of what is missing to 100 %, cut (not
    # rounded: 99.96 must not read 100); the epsilon forgives binary fractions such as 99.69999.
    digits = max(1, min(4, -math.floor(math.log10(missing))))
    return f"{math.floor(value * 10**digits + 1e-6) / 10**digits:.{digits}f} %"


@dataclass(frozen=True)
class Level:
    """Requests and failures over the pulse and over the budget window, and whether the overall
    level keeps to the SLO (None: no traffic to judge)."""

    requests: int
    failed: int
    overall_requests: int
    overall_failed: int
    within_sla: bool | None

    @property
    def level_pct(self) -> float | None:
        return _level(self.requests, self.failed)

    @property
    def overall_pct(self) -> float | None:
        return _level(self.overall_requests, self.overall_failed)

    def recent_text(self, minutes: int) -> str:
        if not self.requests:
            return f"no request in the last {minutes} min"
        if not self.failed:
            return f"no failed request in the last {minutes} min"
        return f"{self.failed:,} failed of {self.requests:,} in the last {minutes} min"

    def sla_text(self) -> str:
        if self.within_sla is None:
            return "no traffic to judge"
        return "within SLA" if self.within_sla else "outside SLA"


@dataclass(frozen=True)
class ScenarioPulse(Level):
    scenario_id: str = ""
    scenario_name: str = ""
    slo_target_pct: float = 100.0


@dataclass(frozen=True)
class Pulse:
    """Every reference scenario's pulse at `as_of`, and all of them together."""

    as_of: datetime
    minutes: int
    budget_minutes: int
    provisional: bool
    scenarios: list[ScenarioPulse] = field(default_factory=list)

    @property
    def overall(self) -> Level:
        """All traffic together; within SLA when every scenario with traffic is."""
        judged = [s.within_sla for s in self.scenarios if s.within_sla is not None]
        return Level(
            requests=sum(s.requests for s in self.scenarios),
            failed=sum(s.failed for s in self.scenarios),
            overall_requests=sum(s.overall_requests for s in self.scenarios),
            overall_failed=sum(s.overall_failed for s in self.scenarios),
            within_sla=all(judged) if judged else None,
        )

    def line(self, level: Level, name: str) -> str:
        return (f"{name}: {_pct(level.level_pct)} ({level.recent_text(self.minutes)}) · "
                f"overall {_pct(level.overall_pct)} over {format_duration(self.budget_minutes)}, "
                f"{level.sla_text()}")

    def worst_first(self) -> list[ScenarioPulse]:
        def key(s: ScenarioPulse):
            # The last 10 minutes first; among equals, the one furthest below its SLO.
            overall_margin = (s.overall_pct - s.slo_target_pct) if s.overall_requests else 0.0
            return (s.level_pct is None, s.level_pct or 0.0, overall_margin, s.scenario_id)
        return sorted(self.scenarios, key=key)

    def lines(self) -> list[str]:
        """The seed's wording: one line per scenario, worst pulse first, then the overall one."""
        return ([self.line(s, s.scenario_name or s.scenario_id) for s in self.worst_first()]
                + [self.line(self.overall, "Overall")])

    def as_json(self) -> dict:
        """What `telemetry pulse --json` prints and the dashboard's /api/pulse serves."""
        def level(value: Level, name: str) -> dict:
            return {**asdict(value), "level_pct": value.level_pct,
                    "overall_pct": value.overall_pct, "text": self.line(value, name)}

        return {
            "as_of": self.as_of.replace(tzinfo=UTC).isoformat(),
            "provisional": self.provisional,
            "pulse_minutes": self.minutes,
            "overall_window": format_duration(self.budget_minutes),
            "overall": level(self.overall, "Overall"),
            "scenarios": [level(s, s.scenario_name or s.scenario_id)
                          for s in self.worst_first()],
        }


def current_pulse(con: duckdb.DuckDBPyConnection, policy: MoodPolicy,
                  as_of: datetime | None = None, minutes: int = PULSE_MINUTES) -> Pulse | None:
    """The pulse at `as_of` (default: the end of the latest data), or None without data."""
    as_of = as_of or latest_data_time(con)
    if as_of is None:
        return None
    as_of = utc_naive(as_of)
    since = provisional_since(con)
    rows = con.execute(PULSE_SQL, {
        "as_of": as_of, "pulse_minutes": minutes, "budget_minutes": policy.budget_minutes,
        "scenario_id": None,
    }).fetchall()
    return Pulse(
        as_of=as_of, minutes=minutes, budget_minutes=policy.budget_minutes,
        provisional=since is not None and as_of > since,
        scenarios=[ScenarioPulse(
            requests=requests, failed=failed, overall_requests=overall_requests,
            overall_failed=overall_failed,
            within_sla=(None if not overall_requests else
                        _level(overall_requests, overall_failed) >= slo),
            scenario_id=scenario, scenario_name=name, slo_target_pct=slo,
        ) for scenario, name, slo, requests, failed, overall_requests, overall_failed in rows],
    )
