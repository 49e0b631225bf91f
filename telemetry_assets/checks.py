"""Asset checks: SQL audits from dbt_like_sql/checks/ and the published contract's expectations.

An audit selects the rows that break its rule; it passes when it selects none. Structural rules
are blocking with ERROR severity: a failure stops every downstream asset of the run, and the
published assets also run the blocking audits of their inputs before writing (a run launched
for a published asset alone skips the upstream checks). Soft expectations are WARN.
"""

import os
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    Failure,
    MetadataValue,
    TimeWindow,
    asset_check,
)

from telemetry_assets.expectations import CONTRACTS, Contract, validate_contract
from telemetry_assets.lake import Lake, Table
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.sql import compute_connection, load_sql
from telemetry_assets.stage import partition_starts, partitions_of, register_inputs, stage_params
from telemetry_assets.tables import (
    DAILY_AGGREGATE,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    RAW_EVENTS,
    REJECTED_EVENTS,
    SCENARIO_MINUTE,
    VALIDATED,
)

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the soft (WARN) expectations, from TELEMETRY_* variables when a check runs."""

    max_quarantine_share: float = 0.01
    min_share_of_week_before: float = 0.5
    min_events_to_compare: int = 100
    busy_requests_per_minute: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "QualityThresholds":
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            max_quarantine_share=float(
                env.get("TELEMETRY_MAX_QUARANTINE_SHARE", defaults.max_quarantine_share)),
            min_share_of_week_before=float(
                env.get("TELEMETRY_MIN_SHARE_OF_WEEK_BEFORE", defaults.min_share_of_week_before)),
            min_events_to_compare=int(
                env.get("TELEMETRY_MIN_EVENTS_TO_COMPARE", defaults.min_events_to_compare)),
            busy_requests_per_minute=float(
                env.get("TELEMETRY_BUSY_REQUESTS_PER_MINUTE", defaults.busy_requests_per_minute)),
        )


@dataclass(frozen=True)
class Audit:
    """One rule about one table: dbt_like_sql/checks/<table>__<rule>.sql selects offenders."""

    table: Table
    rule: str
    description: str
    inputs: Sequence[Table]
    blocking: bool = True
    # Tables read for the week before the window (the view gets a `_week_before` suffix).
    week_before: Sequence[Table] = field(default=())

    @property
    def sql_name(self) -> str:
        return f"{self.table.name}__{self.rule}"

    @property
    def severity(self) -> AssetCheckSeverity:
        return AssetCheckSeverity.ERROR if self.blocking else AssetCheckSeverity.WARN

    @property
    def described(self) -> str:
        """The description shown in the UI, which states the severity before any run."""
        kind = "ERROR, blocking" if self.blocking else "WARN"
        return f"{self.description} Severity: {kind}."


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
    Audit(MINUTE_AGGREGATE, "counts_add_up",
          "Successful plus failed requests equal the total, and no count is negative.",
          [MINUTE_AGGREGATE]),
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
    Audit(DAILY_AGGREGATE, "counts_add_up",
          "Successful plus failed requests equal the total, and no count is negative.",
          [DAILY_AGGREGATE]),
    Audit(DAILY_AGGREGATE, "percentiles_ordered",
          "Latencies are non-negative and p50 <= p95 <= p99.",
          [DAILY_AGGREGATE]),
    Audit(DAILY_AGGREGATE, "matches_minutes",
          "Every daily row's counts equal the sums of its minute rows, and every minute has its "
          "day.",
          [DAILY_AGGREGATE, MINUTE_AGGREGATE]),
    Audit(VALIDATED, "unique_grain",
          "One row per day, scenario, partner, request type and environment.",
          [VALIDATED]),
    Audit(VALIDATED, "counts_add_up",
          "Successful plus failed requests equal the total, and no count is negative.",
          [VALIDATED]),
    Audit(VALIDATED, "availability_in_range",
          "Availability is present and within 0-100 %.",
          [VALIDATED]),
    Audit(VALIDATED, "unknown_ids",
          "Warns on scenario ids missing from scenarios (held back) or partners missing from "
          "customers.",
          [VALIDATED], blocking=False),
    Audit(SCENARIO_MINUTE, "completeness",
          "Warns on silent minutes of a scenario busy enough to have traffic every minute.",
          [SCENARIO_MINUTE], blocking=False),
)

# What must hold before anything is published for a day.
PUBLICATION_GUARDS = tuple(
    audit for audit in AUDITS if audit.blocking and audit.table in (DAILY_AGGREGATE, VALIDATED)
)


@dataclass(frozen=True)
class AuditOutcome:
    audit: Audit
    offending_rows: int
    sample: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.offending_rows == 0


def _register_week_before(
    con: duckdb.DuckDBPyConnection, lake: Lake, table: Table, window: TimeWindow
) -> None:
    shifted = TimeWindow(window.start - timedelta(days=7), window.end - timedelta(days=7))
    paths = [
        str(lake.partition_path(table, start))
        for start in partition_starts(table, shifted)
        if lake.partition_path(table, start).exists()
    ]
    view = f"{table.name}_week_before"
    if paths:
        con.read_parquet(paths, union_by_name=True, hive_partitioning=False).create_view(view)
    else:
        # No history yet: an empty view with the table's columns, so nothing is compared.
        con.sql(f"select * from {table.name} where false").create_view(view)


def run_audit(
    lake: Lake, audit: Audit, window: TimeWindow, thresholds: QualityThresholds | None = None
) -> AuditOutcome:
    """The rows of `window` that break the audit's rule (a count and a few of them)."""
    thresholds = thresholds or QualityThresholds.from_env()
    sql = load_sql("checks", audit.sql_name)
    with closing(compute_connection()) as con:
        register_inputs(con, lake, audit.inputs, window)
        for table in audit.week_before:
            _register_week_before(con, lake, table, window)
        params = stage_params(sql, window, **vars(thresholds))
        con.execute("create temp table offending as " + sql, params)
        (count,) = con.sql("select count(*) from offending").fetchall()[0]
        sample = con.sql(f"select * from offending limit {SAMPLE_ROWS}")
        rows = [dict(zip(sample.columns, row, strict=True)) for row in sample.fetchall()]
    return AuditOutcome(audit, count, rows)


def sample_table(rows: list[dict[str, Any]]) -> MetadataValue:
    if not rows:
        return MetadataValue.md("none")
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "\n".join("| " + " | ".join(str(value) for value in row.values()) + " |"
                     for row in rows)
    return MetadataValue.md(header + body)


def _audit_check(audit: Audit) -> AssetChecksDefinition:
    @asset_check(
        asset=audit.table.asset,
        name=audit.rule,
        description=audit.described,
        blocking=audit.blocking,
        metadata={"severity": audit.severity.value,
                  "audit": f"dbt_like_sql/checks/{audit.sql_name}.sql"},
        partitions_def=partitions_of(audit.table.grain),
        # Inputs written in the same run must be written before the check reads them.
        additional_deps=sorted(
            {table.asset for table in audit.inputs} - {audit.table.asset}
        ),
    )
    def check(context: AssetCheckExecutionContext, store: TelemetryStore) -> AssetCheckResult:
        outcome = run_audit(store.lake, audit, context.partition_time_window)
        return AssetCheckResult(
            passed=outcome.passed,
            severity=audit.severity,
            metadata={
                "offending_rows": outcome.offending_rows,
                "sample": sample_table(outcome.sample),
                "audit": f"dbt_like_sql/checks/{audit.sql_name}.sql",
            },
        )

    return check


def guard_publication(lake: Lake, window: TimeWindow) -> None:
    """Refuse to publish a window whose inputs break a blocking rule."""
    failed = [outcome for audit in PUBLICATION_GUARDS
              if not (outcome := run_audit(lake, audit, window)).passed]
    if failed:
        listed = "; ".join(f"{o.audit.sql_name}: {o.offending_rows} offending rows"
                           for o in failed)
        raise Failure(description=f"not published, blocking checks fail: {listed}",
                      allow_retries=False)


audit_checks = [_audit_check(audit) for audit in AUDITS]


def _contract_check(contract: Contract) -> AssetChecksDefinition:
    @asset_check(
        asset=contract.table.asset,
        name="published_contract",
        description="The great-expectations suite of the published contract: columns in order, "
        "unique key, no missing values, percentages within 0-100, counts that add up. "
        "Severity: ERROR.",
        metadata={"severity": AssetCheckSeverity.ERROR.value},
        partitions_def=partitions_of(contract.table.grain),
    )
    def check(context: AssetCheckExecutionContext, store: TelemetryStore) -> AssetCheckResult:
        lake = store.lake
        paths = [str(lake.partition_path(contract.table, start))
                 for start in partition_starts(contract.table, context.partition_time_window)]
        with closing(compute_connection()) as con:
            frame = con.read_parquet(paths, union_by_name=True, hive_partitioning=False).df()
        result = validate_contract(contract, frame)
        return AssetCheckResult(
            passed=result.success,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows": len(frame),
                "expectations": result.evaluated,
                "failed_expectations": len(result.failures),
                "failures": sample_table(result.failures),
            },
        )

    return check


contract_checks = [_contract_check(contract) for contract in CONTRACTS]
