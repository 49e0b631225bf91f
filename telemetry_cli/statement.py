"""`telemetry statement`: issue a month's partner SLA statements in this process, or list them."""

import re
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from telemetry_cli.options import stdout_console

MONTH = re.compile(r"\d{4}-\d{2}")


def _month(_ctx, _param, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    try:
        if not MONTH.fullmatch(text):
            raise ValueError
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month: give YYYY-MM, e.g. 2026-11") from None
    from telemetry_assets.partitions import monthly_partitions

    first = monthly_partitions.get_first_partition_key()
    last = monthly_partitions.get_last_partition_key()
    if text < first:
        raise click.BadParameter(f"{text} is before the first month the pipeline has, {first}")
    if text > last:
        raise click.BadParameter(f"{text} has not begun yet (the current month is {last})")
    return text


def _percent(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def scenario_table(document: dict) -> RichTable:
    """A statement's lines as the printed statement's table."""
    figures = document["figures"]
    title = (f"{figures['partner_name'] or figures['partner_id']} · {figures['month']} · "
             f"v{document['version']} · {document['status']}"
             + ("" if figures["tier"] is None else f" · tier {figures['tier']}")
             + "".join(f" · {flag}" for flag in figures["flags"]))
    table = RichTable(title=Text(title), title_justify="left")
    for header in ("scenario", "commitment %", "attainment %", "requests", "failed",
                   "excluded min", "excluded req", "completeness %", "credit %"):
        table.add_column(header, justify="left" if header == "scenario" else "right")
    for line in figures["scenarios"]:
        attainment = _percent(line["attainment_pct"])
        table.add_row(
            Text(line["scenario_id"]), f"{line['commitment_pct']:g}",
            Text(attainment, style="red" if line["met"] is False else ""),
            f"{line['total_requests']:,}", f"{line['failed_requests']:,}",
            f"{line['excluded_minutes']:,}", f"{line['excluded_requests']:,}",
            _percent(line["completeness_pct"], 2), f"{line['credit_pct']:g}",
        )
    return table


def _revision_lines(document: dict) -> list[str]:
    revision = document.get("revision")
    if not revision:
        return []
    lines = [f"  revision of v{revision['previous_version']}:"]
    lines += [f"    {c['figure']}: {c['old']} -> {c['new']}" for c in revision["statement"]]
    for change in revision["scenarios"]:
        (a0, a1), (r0, r1), (c0, c1) = (change["attainment_pct"], change["total_requests"],
                                        change["credit_pct"])
        lines.append(f"    {change['scenario_id']} ({change['change']}): attainment "
                     f"{_percent(a0)} -> {_percent(a1)} %, requests {r0 if r0 is not None else '-'}"
                     f" -> {r1 if r1 is not None else '-'}, credit {c0 if c0 is not None else '-'}"
                     f" -> {c1 if c1 is not None else '-'} %")
    return lines


def _check_issuable(lake, month: str, partner: str | None) -> list[str]:
    """Why there is nothing to issue, as a ClickException; else notes to print first."""
    from telemetry_assets.partitions import monthly_partitions
    from telemetry_assets.sla.figures import known_partners, partners_with_traffic, processed_hours
    from telemetry_assets.tables import CUSTOMERS, SCENARIOS

    window = monthly_partitions.time_window_for_partition_key(month)
    if not all(lake.partition_path(table).exists() for table in (SCENARIOS, CUSTOMERS)):
        raise click.ClickException(
            f"no reference data in the lake at {lake.root}: run the pipeline first "
            "(telemetry backfill)")
    if not processed_hours(lake, window):
        raise click.ClickException(
            f"nothing to issue for {month}: none of its hours has been processed; run "
            f"`telemetry backfill --start {window.start:%Y-%m-%d} --end {window.end:%Y-%m-%d}`"
            " (up to the last complete hour for the current month)")
    traffic = partners_with_traffic(lake, window)
    if partner is not None:
        key = partner.strip().lower()
        if not any(found.strip().lower() == key for found in traffic):
            if key in known_partners(lake):
                raise click.ClickException(
                    f"nothing to issue for {partner} in {month}: it has no requests on a "
                    "reference scenario in the month's processed hours")
            raise click.ClickException(
                f"unknown partner {partner!r}: not in customers.csv and no traffic in {month}")
    elif not traffic:
        raise click.ClickException(
            f"nothing to issue for {month}: no requests on a reference scenario in its "
            "processed hours")
    notes = []
    if window.end > datetime.now(UTC):
        notes.append(f"{month} has not closed yet: its statements are PRELIMINARY (a final one "
                     "follows as a new version once the month is over)")
    return notes


def _issued_in(instance, run_id: str) -> list[dict]:
    from dagster import DagsterEventType

    from telemetry_assets.jobs import STATEMENTS_METADATA

    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    listed: list[dict] = []
    for record in records:
        materialization = record.asset_materialization
        if materialization and STATEMENTS_METADATA in materialization.metadata:
            listed += materialization.metadata[STATEMENTS_METADATA].value
    return listed


def issue(month: str, partner: str | None) -> None:
    from telemetry_assets.jobs import LAUNCHED_BY_TAG, SLA_JOB
    from telemetry_assets.resources import TelemetryStore
    from telemetry_assets.sla.issue import read_document
    from telemetry_cli.launcher import RunFailed, execute, instance_for_cli

    lake = TelemetryStore().lake
    notes = _check_issuable(lake, month, partner)
    err = Console(stderr=True, highlight=False)
    for note in notes:
        err.print(Text(note, style="yellow"))
    run_config = ({"ops": {"sla_statements": {"config": {"partners": [partner]}}}}
                  if partner is not None else None)
    instance = instance_for_cli()
    try:
        run_id = execute(instance, SLA_JOB, {LAUNCHED_BY_TAG: "telemetry statement"},
                         partition_key=month, run_config=run_config)
    except RunFailed as failed:
        raise click.ClickException(str(failed)) from failed
    listed = _issued_in(instance, run_id)
    if not listed:
        raise click.ClickException(f"nothing was issued for {month} (run {run_id})")
    out = stdout_console()
    out.print(Text(f"Statements of {month} (run {run_id}):"))
    for entry in listed:
        document = read_document(Path(entry["directory"]))
        status = ("issued" if entry["status"] == "issued"
                  else "unchanged (figures equal to the latest version: nothing new written)")
        out.print()
        out.print(Text(f"{entry['partner_id']}: v{entry['version']} {status}"))
        for name, path in entry["files"].items():
            out.print(Text(f"  {name:<15} {path}"), soft_wrap=True)
        if entry["status"] == "issued" and document["pdf"]["reason"]:
            out.print(Text(f"  PDF not rendered: {document['pdf']['reason']}", style="yellow"),
                      soft_wrap=True)
        for line in _revision_lines(document):
            out.print(Text(line))
        out.print(scenario_table(document))
    issued = sum(entry["status"] == "issued" for entry in listed)
    out.print(Text(f"\n{issued} issued, {len(listed) - issued} unchanged"))


def list_issued(month: str | None, partner: str | None) -> None:
    from telemetry_assets.resources import TelemetryStore
    from telemetry_assets.sla.issue import issued_versions, statements_root

    root = statements_root(TelemetryStore().lake)
    found = issued_versions(root, month, partner)
    out = stdout_console()
    if not found:
        asked = " ".join(part for part in (month and f"for {month}",
                                           partner and f"of partner {partner}") if part)
        out.print(Text(f"No statements issued{' ' + asked if asked else ''} under {root}"))
        return
    table = RichTable(title=Text(f"Statements issued under {root}"), title_justify="left")
    for header in ("month", "partner", "version", "status", "issued", "pdf", "folder"):
        table.add_column(header)
    for version in found:
        table.add_row(
            version.month, Text(version.partner_id), f"v{version.version}", version.status,
            version.issued_at.replace("T", " ").replace("Z", " UTC"),
            "yes" if "statement.pdf" in version.files else "no",
            Text(str(version.directory)),
        )
    out.print(table)


@click.command()
@click.option("--month", callback=_month, help="The month (UTC) as YYYY-MM, e.g. 2026-11.")
@click.option("--partner", help="Only this partner (its id, matched case-insensitively).")
@click.option("--list", "list_only", is_flag=True,
              help="List the statements issued (of --month and --partner, when given).")
def statement(month: str | None, partner: str | None, list_only: bool) -> None:
    """Issue a month's partner SLA statements and print them, or list what was issued.

    Each partner's statement is a frozen version under <lake>/statements: issuing again with
    unchanged figures writes nothing, changed figures a new version that states the difference.
    The month is materialized in this process as a run of the issue_sla_statements job.
    """
    if list_only:
        list_issued(month, partner)
        return
    if month is None:
        raise click.UsageError("give --month YYYY-MM (or --list)")
    issue(month, partner)
