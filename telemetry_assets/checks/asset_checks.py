"""One Dagster asset check per audit and per published contract, judged per partition window."""

from contextlib import closing

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    asset_check,
)

from telemetry_assets import markdown
from telemetry_assets.checks.audits import AUDITS, Audit, ledger
from telemetry_assets.checks.contracts import CONTRACTS, Contract, validate_contract
from telemetry_assets.partitions import partitions_of
from telemetry_assets.resources import QualitySettings, TelemetryStore
from telemetry_core.sql import compute_connection


def _audit_check(audit: Audit) -> AssetChecksDefinition:
    source = f"dbt_like_sql/checks/{audit.sql_file}.sql"

    @asset_check(
        asset=audit.table.asset,
        name=audit.rule,
        description=audit.described,
        blocking=audit.blocking,
        metadata={"severity": audit.severity.value, "audit": source},
        partitions_def=partitions_of(audit.table.grain),
        # Inputs written in the same run must be written before the check reads them.
        additional_deps=sorted(
            {table.asset for table in audit.inputs} - {audit.table.asset}
        ),
    )
    def check(context: AssetCheckExecutionContext, store: TelemetryStore,
              quality: QualitySettings) -> AssetCheckResult:
        outcome = ledger.outcome(context.run.run_id, store.lake, audit,
                                 context.partition_time_window, quality.thresholds)
        return AssetCheckResult(
            passed=outcome.passed,
            severity=audit.severity,
            metadata={
                "offending_rows": outcome.offending_rows,
                "sample": markdown.table(outcome.sample),
                "audit": source,
            },
        )

    return check


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
        with closing(compute_connection()) as con:
            store.lake.register(con, contract.table, context.partition_time_window)
            frame = con.table(contract.table.name).df()
        result = validate_contract(contract, frame)
        return AssetCheckResult(
            passed=result.success,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "rows": len(frame),
                "expectations": result.evaluated,
                "failed_expectations": len(result.failures),
                "failures": markdown.table(result.failures),
            },
        )

    return check


audit_checks = [_audit_check(audit) for audit in AUDITS]
contract_checks = [_contract_check(contract) for contract in CONTRACTS]
