"""A month's SLA figures per partner and reference scenario, from the lake's exact minute
aggregates (never the provisional ones: closed hours are the record SLA figures come from).

Requests are summed in DuckDB (dbt_like_sql/sla/sla_statements.sql); the minutes (excluded,
expected, received) are counted here from the maintenance windows and the hours the pipeline has
processed, as unions of minute-aligned spans, so that a month costs the same however many
partners it has.
"""

import hashlib
from collections.abc import Collection, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
from dagster import TimeWindow

from telemetry_assets.lake import Lake, file_identity
from telemetry_assets.partitions import Grain, partition_starts
from telemetry_assets.stage import stage_params
from telemetry_assets.tables import CUSTOMERS, MINUTE_AGGREGATE, SCENARIOS
from telemetry_core.slos import MaintenanceWindow, SloCatalog
from telemetry_core.sql import ceil_minute, compute_connection, load_sql, utc_naive

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# What a partner missing from customers.csv is flagged as, on the statement and in its figures.
UNKNOWN_PARTNER = "unknown partner"

Span = tuple[datetime, datetime]


def minute_spans(intervals: Iterable[Span], within: Span) -> list[Span]:
    """The minute starts that lie in any [start, end) of `intervals` and in `within` (whose
    bounds are whole minutes), as sorted, disjoint, minute-aligned spans.

    A minute belongs to an interval when its start does: minute m with start <= m < end, so
    [02:00:30, 03:00) holds 02:01 to 02:59, and [02:00, 02:00:30) holds 02:00 alone.
    """
    clipped = sorted((max(ceil_minute(start), within[0]), min(ceil_minute(end), within[1]))
                     for start, end in intervals)
    merged: list[Span] = []
    for start, end in clipped:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def count_minutes(spans: Iterable[Span]) -> int:
    return sum((end - start) // MINUTE for start, end in spans)


def intersect(left: Sequence[Span], right: Sequence[Span]) -> list[Span]:
    """The overlap of two sorted, disjoint span lists."""
    found, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            found.append((start, end))
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return found


@dataclass(frozen=True)
class MinuteCounts:
    """How many of the month's minutes a statement line stands on."""

    excluded: int  # in a maintenance window covering the line
    expected: int  # the rest: the minutes the commitment applies to
    received: int  # of those, the minutes of hours the pipeline has processed

    @property
    def completeness_pct(self) -> float | None:
        return 100.0 * self.received / self.expected if self.expected else None


def minute_counts(month: Span, windows: Iterable[MaintenanceWindow],
                  processed: Sequence[Span]) -> MinuteCounts:
    """The counts for one line: `windows` are those covering it, `processed` the spans of the
    hours processed (from `processed_spans`)."""
    excluded = minute_spans(((w.start, w.end) for w in windows), month)
    expected = count_minutes([month]) - count_minutes(excluded)
    received = count_minutes(processed) - count_minutes(intersect(processed, excluded))
    return MinuteCounts(count_minutes(excluded), expected, received)


def processed_hours(lake: Lake, window: TimeWindow) -> list[datetime]:
    """The hours of the window (naive UTC starts) whose exact minute_aggregate partition file
    exists: the hours the pipeline has processed, with or without traffic."""
    return [start for start in partition_starts(Grain.HOUR, window)
            if start is not None and lake.partition_path(MINUTE_AGGREGATE, start).exists()]


def processed_spans(hours: Iterable[datetime], month: Span) -> list[Span]:
    return minute_spans(((utc_naive(hour), utc_naive(hour) + HOUR) for hour in hours), month)


@dataclass(frozen=True)
class Line:
    """One scenario of a partner's statement."""

    scenario_id: str
    scenario_name: str
    commitment_pct: float
    total_requests: int  # outside the excluded minutes
    successful_requests: int
    excluded_requests: int
    minutes: MinuteCounts
    credit_pct: float

    @property
    def failed_requests(self) -> int:
        return self.total_requests - self.successful_requests

    @property
    def attainment_pct(self) -> float | None:
        if not self.total_requests:
            return None
        return 100.0 * self.successful_requests / self.total_requests

    @property
    def met(self) -> bool | None:
        attainment = self.attainment_pct
        return None if attainment is None else attainment >= self.commitment_pct

    def figures(self) -> dict[str, Any]:
        return {
            "scenario_id": self.scenario_id,
            "scenario_name": self.scenario_name,
            "commitment_pct": self.commitment_pct,
            "total_requests": self.total_requests,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "attainment_pct": self.attainment_pct,
            "met": self.met,
            "excluded_minutes": self.minutes.excluded,
            "excluded_requests": self.excluded_requests,
            "expected_minutes": self.minutes.expected,
            "received_minutes": self.minutes.received,
            "completeness_pct": self.minutes.completeness_pct,
            "credit_pct": self.credit_pct,
        }


@dataclass(frozen=True)
class Statement:
    """One partner's figures for one month."""

    month: str
    start: datetime  # naive UTC
    end: datetime
    partner_id: str
    partner_name: str | None
    tier: str | None
    known_partner: bool
    # The month had not closed when the figures were computed.
    preliminary: bool
    lines: tuple[Line, ...]
    # The maintenance windows that cover at least one line.
    maintenance: tuple[MaintenanceWindow, ...] = field(default=())

    @property
    def flags(self) -> list[str]:
        return [] if self.known_partner else [UNKNOWN_PARTNER]

    def figures(self) -> dict[str, Any]:
        """Everything a version states; two issues with equal figures are one version."""
        return {
            "month": self.month,
            "period_start": f"{self.start:%Y-%m-%dT%H:%M:%S}Z",
            "period_end": f"{self.end:%Y-%m-%dT%H:%M:%S}Z",
            "period_minutes": count_minutes([(self.start, self.end)]),
            "partner_id": self.partner_id,
            "partner_name": self.partner_name,
            "tier": self.tier,
            "flags": self.flags,
            "preliminary": self.preliminary,
            "scenarios": [line.figures() for line in self.lines],
        }


@dataclass(frozen=True)
class MonthInputs:
    """Which versions of which lake files a month's statements are computed from."""

    files: tuple[dict[str, Any], ...]
    minute_aggregate_hours: int

    @property
    def digest(self) -> str:
        """sha256 over one `path size mtime_ns` line per file, in path order."""
        lines = "".join(f"{f['path']} {f['size']} {f['mtime_ns']}\n" for f in self.files)
        return hashlib.sha256(lines.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {"minute_aggregate_hours": self.minute_aggregate_hours,
                "identities_sha256": self.digest, "files": list(self.files)}


def _from_ns(nanoseconds: int) -> datetime:
    """Exact to the microsecond, where a float of seconds would round."""
    seconds, rest = divmod(nanoseconds, 10**9)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)


def month_inputs(lake: Lake, hours: Iterable[datetime]) -> MonthInputs:
    paths = [lake.partition_path(SCENARIOS), lake.partition_path(CUSTOMERS),
             *(lake.partition_path(MINUTE_AGGREGATE, hour) for hour in hours)]
    files = []
    for path in sorted(paths):
        identity = file_identity(path)
        if identity is None:
            continue
        _, mtime_ns, size = identity
        files.append({
            "path": str(path.relative_to(lake.root)),
            "size": size,
            "mtime_ns": mtime_ns,
            "mtime": f"{_from_ns(mtime_ns):%Y-%m-%dT%H:%M:%S.%fZ}",
        })
    return MonthInputs(tuple(files), sum(1 for f in files if f["path"].startswith(
        f"{MINUTE_AGGREGATE.schema}/{MINUTE_AGGREGATE.name}/")))


def _key(value: str) -> str:
    """How the SQL matches ids: trimmed (all whitespace) and lower-cased."""
    return value.strip().lower()


def _covers_frame(rows: list[tuple[str, str, datetime, datetime]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario_key", "partner_key", "start_at", "end_at"])
    return frame.astype({"scenario_key": "string", "partner_key": "string",
                         "start_at": "datetime64[us]", "end_at": "datetime64[us]"})


@dataclass(frozen=True)
class _MonthKeys:
    """The loaded reference by matching key, and the (scenario, partner) keys the month's
    processed hours have traffic for."""

    scenarios: dict[str, tuple[str, str]]  # key -> (scenario_id, scenario_name)
    customers: dict[str, tuple[str, str, str]]  # key -> (partner_id, partner_name, tier)
    pairs: list[tuple[str, str]]

    def partner_id(self, partner_key: str) -> str:
        """As the statements spell it: customers.csv's id, else the events' id matched on."""
        return self.customers.get(partner_key, (partner_key,))[0]


def _month_keys(con: duckdb.DuckDBPyConnection, span: Span) -> _MonthKeys:
    scenarios = {_key(sid): (sid, name) for sid, name in con.sql(
        "select scenario_id, scenario_name from scenarios").fetchall()}
    customers = {_key(pid): (pid, name, tier) for pid, name, tier in con.sql(
        "select partner_id, partner_name, tier from customers").fetchall()}
    pairs = con.execute(
        "select distinct lower(trim(scenario_id)), lower(trim(partner_id)) "
        "from minute_aggregate where minute >= $start and minute < $end",
        {"start": span[0], "end": span[1]}).fetchall()
    return _MonthKeys(scenarios, customers,
                      [(scenario, partner) for scenario, partner in pairs if scenario in scenarios])


def _register_month(con: duckdb.DuckDBPyConnection, lake: Lake, window: TimeWindow) -> int:
    lake.register(con, SCENARIOS)
    lake.register(con, CUSTOMERS)
    return lake.register(con, MINUTE_AGGREGATE, window, existing_only=True)


def compute_statements(
    lake: Lake,
    catalog: SloCatalog,
    month: str,
    window: TimeWindow,
    now: datetime,
    partners: Collection[str] = (),
) -> list[Statement]:
    """The month's statements: one per partner with requests on a reference scenario in the
    month's processed hours (only those of `partners`, matched like the events, when given)."""
    span = (utc_naive(window.start), utc_naive(window.end))
    hours = processed_hours(lake, window)
    if not hours:
        return []
    wanted = {_key(partner) for partner in partners}
    with closing(compute_connection()) as con:
        _register_month(con, lake, window)
        keys = _month_keys(con, span)
        covers = []
        for scenario_key, partner_key in keys.pairs:
            if wanted and partner_key not in wanted:
                continue
            scenario_id, partner_id = keys.scenarios[scenario_key][0], keys.partner_id(partner_key)
            covers += [(scenario_key, partner_key, w.start, w.end) for w in catalog.maintenance
                       if w.covers(scenario_id, partner_id)]
        con.register("maintenance_covers", _covers_frame(covers))
        sql = load_sql("sla", "sla_statements")
        try:
            sums = con.execute(sql, stage_params(sql, window)).fetchall()
        except duckdb.Error as error:
            damage = lake.describe_damage(error)
            if damage is not None:
                error.add_note(damage)
            raise
    processed = processed_spans(hours, span)
    availability = {o.scenario_id: o for o in catalog.objectives if o.kind == "availability"}
    by_partner: dict[str, list[tuple]] = {}
    for row in sums:
        if not wanted or _key(row[1]) in wanted:
            by_partner.setdefault(row[1], []).append(row)
    statements = []
    for partner_id, rows in sorted(by_partner.items()):
        known = keys.customers.get(_key(partner_id))
        tier = known[2] if known else None
        lines, applied = [], []
        for scenario_id, _, total, successful, excluded_requests in rows:
            windows = [w for w in catalog.maintenance if w.covers(scenario_id, partner_id)]
            applied += [w for w in windows if w not in applied
                        and minute_spans([(w.start, w.end)], span)]
            objective = availability.get(scenario_id)
            if objective is None:
                continue  # a scenario loaded after the catalog was read: no commitment yet
            commitment = objective.target_for(tier)
            total, successful = int(total), int(successful)
            attainment = 100.0 * successful / total if total else None
            lines.append(Line(
                scenario_id=scenario_id,
                scenario_name=keys.scenarios[_key(scenario_id)][1],
                commitment_pct=commitment,
                total_requests=total,
                successful_requests=successful,
                excluded_requests=int(excluded_requests),
                minutes=minute_counts(span, windows, processed),
                credit_pct=catalog.credit_pct(attainment, commitment),
            ))
        if not lines:
            continue
        statements.append(Statement(
            month=month, start=span[0], end=span[1], partner_id=partner_id,
            partner_name=known[1] if known else None, tier=tier, known_partner=known is not None,
            preliminary=utc_naive(now) < span[1], lines=tuple(lines),
            maintenance=tuple(sorted(applied, key=lambda w: (w.start, w.end, w.scenarios,
                                                            w.partners))),
        ))
    return statements


def partners_with_traffic(lake: Lake, window: TimeWindow) -> dict[str, bool]:
    """Partner ids with requests on a reference scenario in the month's processed hours (as the
    statements spell them), each with whether customers.csv knows it."""
    span = (utc_naive(window.start), utc_naive(window.end))
    with closing(compute_connection()) as con:
        if not _register_month(con, lake, window):
            return {}
        keys = _month_keys(con, span)
    return dict(sorted((keys.partner_id(partner), partner in keys.customers)
                       for _, partner in keys.pairs))


def known_partners(lake: Lake) -> dict[str, str]:
    """customers.csv as loaded: partner id by its matching key."""
    with closing(compute_connection()) as con:
        lake.register(con, CUSTOMERS)
        return {_key(pid): pid for (pid,) in con.sql("select partner_id from customers")
                .fetchall()}
