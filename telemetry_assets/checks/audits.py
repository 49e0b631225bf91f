"""SQL audits: one rule about one table each, from dbt_like_sql/checks/.

An audit selects the rows that break its rule; it passes when it selects none. Structural rules
are blocking with ERROR severity: a failure stops every downstream asset of the run, and the
published assets also require the blocking audits of their inputs before writing (a run launched
for a published asset alone has no upstream check steps). Soft expectations are WARN.

Within one run an audit is evaluated once per day: its check step records the outcome of each
day, and the publication gate and the quality summary of the same run read them instead of
scanning again.
"""

import logging
import threading
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dagster import AssetCheckSeverity, Failure, TimeWindow

from telemetry_assets.lake import Lake, Table
from telemetry_assets.partitions import by_day, shifted
from telemetry_assets.resources import QualityThresholds
from telemetry_assets.stage import register_inputs, stage_params
from telemetry_assets.tables import (
    DAILY_AGGREGATE,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    LATENCY_PERCENTILES,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    RAW_EVENTS,
    REJECTED_EVENTS,
    SCENARIO_MINUTE,
    VALIDATED,
)
from telemetry_core.annotations import MAX_TEXT_CHARS, Annotation, note, platform_id
from telemetry_core.sql import compute_connection, load_sql, utc_naive

log = logging.getLogger(__name__)

SAMPLE_ROWS = 5
# The view a generic audit reads: the audited table's partitions of the window.
AUDITED_VIEW = "audited"


@dataclass(frozen=True)
class Audit:
    """One rule about one table: dbt_like_sql/checks/<table>__<rule>.sql selects offenders, or
    the generic checks/<rule>.sql over the `audited` view."""

    table: Table
    rule: str
    description: str
    inputs: Sequence[Table]
    blocking: bool = True
    generic: bool = False
    # Tables read for the week before the window (the view gets a `_week_before` suffix).
    week_before: Sequence[Table] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.table.name}__{self.rule}"

    @property
    def sql_file(self) -> str:
        return self.rule if self.generic else self.name

    @property
    def severity(self) -> AssetCheckSeverity:
        return AssetCheckSeverity.ERROR if self.blocking else AssetCheckSeverity.WARN

    @property
    def described(self) -> str:
        """The description shown in the UI, which states the severity before any run."""
        kind = "ERROR, blocking" if self.blocking else "WARN"
        return f"{self.description} Severity: {kind}."


def counts_add_up(table: Table) -> Audit:
    return Audit(table, "counts_add_up",
                 "Successful plus failed requests equal the total, and no count is negative.",
                 [table], generic=True)


AUDITS = (
    Audit(FILTERED_EVENTS, "outcomes_add_up",
          "Every raw event has exactly one outcome, and the kept ones are the filtered events.",
          [RAW_EVENTS, FILTERED_EVENTS, EVENT_OUTCOMES]),
    Audit(FILTERED_EVENTS, "traffic_vs_week_before",
          "Warns on an hour with much less traffic than the same hour a week earlier.",
          [EVENT_OUTCOMES], blocking=False, week_before=[EVENT_OUTCOMES]),
    Audit(REJECTED_EVENTS, "quarantine_rate",
          "Warns when more than the allowed share of an hour's landing lines was rejected.",
          [REJECTED_EVENTS, EVENT_OUTCOMES], blocking=False),
    Audit(MINUTE_AGGREGATE, "unique_grain",
          "One row per scenario, partner, minute, request type and environment.",
          [MINUTE_AGGREGATE]),
    counts_add_up(MINUTE_AGGREGATE),
    Audit(MINUTE_AGGREGATE, "latency_non_negative",
          "No negative latency, and no more latency samples than requests.",
          [MINUTE_AGGREGATE]),
    Audit(MINUTE_LATENCY, "unique_grain",
          "One row per latency bucket of a minute_aggregate row, each with requests.",
          [MINUTE_LATENCY]),
    Audit(MINUTE_LATENCY, "matches_aggregate",
          "Every minute_aggregate row's latency samples are exactly in its histogram buckets.",
          [MINUTE_LATENCY, MINUTE_AGGREGATE]),
    Audit(DAILY_AGGREGATE, "unique_grain",
          "One row per day, scenario, partner, request type and environment.",
          [DAILY_AGGREGATE]),
    counts_add_up(DAILY_AGGREGATE),
    Audit(DAILY_AGGREGATE, "matches_minutes",
          "Every daily row's counts equal the sums of its minute rows, and every minute has its "
          "day.",
          [DAILY_AGGREGATE, MINUTE_AGGREGATE]),
    Audit(VALIDATED, "unique_grain",
          "One row per day, scenario, partner, request type and environment.",
          [VALIDATED]),
    counts_add_up(VALIDATED),
    Audit(VALIDATED, "availability_in_range",
          "Availability is present and within 0-100 %.",
          [VALIDATED]),
    Audit(VALIDATED, "unknown_ids",
          "Warns on scenario ids missing from scenarios (held back) or partners missing from "
          "customers.",
          [VALIDATED], blocking=False),
    Audit(LATENCY_PERCENTILES, "percentiles_ordered",
          "Latencies are non-negative, p50 <= p95 <= p99, and measured rows have percentiles.",
          [LATENCY_PERCENTILES]),
    Audit(SCENARIO_MINUTE, "completeness",
          "Warns on silent minutes of a scenario busy enough to have traffic every minute.",
          [SCENARIO_MINUTE], blocking=False),
)

# What must hold before anything is published for a day.
PUBLICATION_GUARDS = tuple(
    audit for audit in AUDITS
    if audit.blocking and audit.table in (DAILY_AGGREGATE, VALIDATED, LATENCY_PERCENTILES)
)


@dataclass(frozen=True)
class AuditOutcome:
    audit: Audit
    offending_rows: int
    sample: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.offending_rows == 0


def _register_week_before(con, lake: Lake, table: Table, window: TimeWindow) -> None:
    view = f"{table.name}_week_before"
    if not lake.register(con, table, shifted(window, -timedelta(days=7)), view_name=view,
                         existing_only=True):
        # No history yet: an empty view with the table's columns, so nothing is compared.
        con.register(view, con.sql(f"select * from {table.name} where false"))


def run_audit(lake: Lake, audit: Audit, window: TimeWindow,
              thresholds: QualityThresholds) -> AuditOutcome:
    """The rows of `window` that break the audit's rule (a count and a few of them).

    Every rule holds or breaks within a UTC day (it is about a row, an hour or a day), so a long
    window is audited a day at a time: the same offending rows, with memory bounded by a day's
    data rather than the range's (a 30-day range audited at once held GBs in one hash join).
    """
    return combined(audit, [audit_day(lake, audit, day, thresholds) for day in by_day(window)])


def audit_day(lake: Lake, audit: Audit, day: TimeWindow,
              thresholds: QualityThresholds) -> AuditOutcome:
    """The audit over a window within one UTC day."""
    sql = load_sql("checks", audit.sql_file)
    with closing(compute_connection()) as con:
        register_inputs(con, lake, audit.inputs, day)
        if audit.generic:
            lake.register(con, audit.table, day, view_name=AUDITED_VIEW)
        for table in audit.week_before:
            _register_week_before(con, lake, table, day)
        con.execute("create temp table offending as " + sql,
                    stage_params(sql, day, **vars(thresholds)))
        (found,) = con.sql("select count(*) from offending").fetchall()[0]
        rows = []
        if found:
            sample = con.sql(f"select * from offending limit {SAMPLE_ROWS}")
            rows = [dict(zip(sample.columns, row, strict=True)) for row in sample.fetchall()]
    return AuditOutcome(audit, found, rows)


def combined(audit: Audit, days: list[AuditOutcome]) -> AuditOutcome:
    """The outcome of a window from its days' outcomes, in order."""
    return AuditOutcome(audit, sum(day.offending_rows for day in days),
                        [row for day in days for row in day.sample][:SAMPLE_ROWS])


class AuditLedger:
    """Outcomes of the current run's audits, by audit and day.

    Steps of one run share a process with the in-process executor: the first step that needs
    a day's outcome computes it, the others read it (a check step over a range of days, then
    the quality summary of each day). Another run's outcomes are never reused, since its data
    may differ; a run in another process simply evaluates again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run_id: str | None = None
        self._outcomes: dict[tuple[str, TimeWindow], AuditOutcome] = {}

    def outcome(self, run_id: str, lake: Lake, audit: Audit, window: TimeWindow,
                thresholds: QualityThresholds) -> AuditOutcome:
        days = []
        for day in by_day(window):
            key = (audit.name, day)
            with self._lock:
                if self._run_id != run_id:
                    self._run_id, self._outcomes = run_id, {}
                known = self._outcomes.get(key)
            if known is None:
                known = audit_day(lake, audit, day, thresholds)
                with self._lock:
                    if self._run_id == run_id:
                        self._outcomes[key] = known
            days.append(known)
        return combined(audit, days)


ledger = AuditLedger()


def window_label(window: TimeWindow) -> str:
    """The days of a daily window as a person names them: the last one included."""
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    return f"{first}" if first == last else f"{first} to {last}"


def guard_publication(run_id: str, lake: Lake, window: TimeWindow,
                      thresholds: QualityThresholds) -> None:
    """Refuse to publish a window whose inputs break a blocking rule."""
    failed = [outcome for audit in PUBLICATION_GUARDS
              if not (outcome := ledger.outcome(run_id, lake, audit, window, thresholds)).passed]
    if failed:
        listed = "; ".join(f"{o.audit.name}: {o.offending_rows} offending rows" for o in failed)
        start, end = (utc_naive(moment) for moment in (window.start, window.end))
        # At the window's start, not as a band over it: a day-long band would hide the chart.
        note(lake.root, [Annotation(
            starts_at=start, kind="check_failed", source="platform:publication",
            text=f"{window_label(window)} not published, blocking checks fail: "
                 f"{listed}"[:MAX_TEXT_CHARS],
            annotation_id=platform_id("check_failed", run_id, start, end))], log)
        raise Failure(description=f"not published, blocking checks fail: {listed}",
                      allow_retries=False)
