"""SLA: each partner's monthly statement, issued as frozen versions (docs/statements.md)."""

from datetime import UTC, datetime

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)
from pydantic import Field

from telemetry_assets import markdown
from telemetry_assets.assets.reference import load_catalog
from telemetry_assets.jobs import STATEMENTS_METADATA
from telemetry_assets.partitions import monthly_partitions
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.sla.issue import (
    InputsChanged,
    Issued,
    catalog_identity,
    issue_month,
    statements_root,
)
from telemetry_assets.tables import CUSTOMERS, MINUTE_AGGREGATE, SCENARIOS
from telemetry_core.slos import SloFileError


class StatementConfig(Config):
    partners: list[str] = Field(
        default=[],
        description="Issue only these partners' statements (ids matched trimmed and "
                    "case-insensitively); empty: every partner with traffic in the month.")


def describe(issued: Issued) -> dict:
    """One statement as the run's metadata lists it."""
    files = issued.files()
    return {
        "month": issued.month,
        "partner_id": issued.partner_id,
        "version": issued.version,
        "status": issued.status,
        "directory": str(issued.directory),
        "files": {name: str(path) for name, path in files.items()},
        "pdf": "rendered" if issued.pdf_error is None else f"not rendered: {issued.pdf_error}",
    }


@asset(
    name="sla_statements",
    group_name="sla",
    partitions_def=monthly_partitions,
    deps=[AssetDep(MINUTE_AGGREGATE.asset, partition_mapping=TimeWindowPartitionMapping()),
          SCENARIOS.asset, CUSTOMERS.asset],
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"json", "html", "pdf"},
)
def sla_statements(context: AssetExecutionContext, store: TelemetryStore,
                   config: StatementConfig) -> MaterializeResult:
    """Each partner's monthly SLA statement (per scenario: commitment, attainment, exclusions,
    completeness, credit), one frozen version per change of its figures."""
    lake = store.lake
    try:
        catalog = load_catalog(lake, store.settings)
    except SloFileError as error:
        raise Failure(description=str(error), allow_retries=False) from error
    identity = catalog_identity(catalog)
    now = datetime.now(UTC)
    issued: list[Issued] = []
    for key in context.partition_keys:
        window = monthly_partitions.time_window_for_partition_key(key)
        try:
            found = issue_month(lake, catalog, key, window, run_id=context.run.run_id, now=now,
                                catalog_json=identity, partners=config.partners)
        except InputsChanged as error:
            raise Failure(description=str(error)) from error
        if not found:
            context.log.warning(f"{key}: nothing to issue (no processed hour with traffic on a "
                                "reference scenario" + (" for the partners asked for)"
                                                        if config.partners else ")"))
        issued += found
    for each in issued:
        if each.new and each.pdf_error:
            context.log.warning(f"{each.directory}: PDF not rendered: {each.pdf_error}")
    listed = [describe(each) for each in issued]
    return MaterializeResult(metadata={
        "issued": sum(each.new for each in issued),
        "unchanged": sum(not each.new for each in issued),
        "pdf_not_rendered": sum(each.new and each.pdf_error is not None for each in issued),
        "root": MetadataValue.path(str(statements_root(lake))),
        "objectives": identity["source"] or "scenarios.csv only",
        "statements": markdown.table(
            [(e["month"], e["partner_id"], f"v{e['version']}", e["status"], e["pdf"],
              e["directory"]) for e in listed],
            ["month", "partner", "version", "status", "pdf", "path"], empty="none issued"),
        STATEMENTS_METADATA: MetadataValue.json(listed),
    })
