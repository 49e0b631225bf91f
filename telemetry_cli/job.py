"""`telemetry job`: batch jobs as a source (run one, ingest a console log, list runs and lines)."""

import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.table import Table as RichTable
from rich.text import Text

from telemetry_cli.options import stdout_console, utc_day
from telemetry_core.annotations import AnnotationError, KnownScopes, parse_scope, parse_time
from telemetry_core.settings import Settings


def _scenario(_ctx, _param, value: str) -> str:
    """A scenario of scenarios.csv: a typo would publish nothing under the intended name."""
    try:
        return parse_scope(f"scenario:{value}",
                           KnownScopes.from_reference(Settings.from_env().reference_dir))[1]
    except AnnotationError as error:
        raise click.BadParameter(error.reason) from None


def _time(_ctx, param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, param.name)
    except AnnotationError as error:
        raise click.BadParameter(error.reason) from None


@click.group()
def job() -> None:
    """Batch jobs as a source: each run an availability event, its console output log lines."""


@job.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--scenario", required=True, callback=_scenario,
              help="The job's scenario (in scenarios.csv).")
@click.option("--partner", default="batch", show_default=True, help="Who the job runs for.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(scenario: str, partner: str, command: tuple[str, ...]) -> None:
    """Run COMMAND (after `--`), show its output as it comes, record it, exit with its status.

    \b
    telemetry job run --scenario billing.nightly_invoices -- ./invoices.sh --date today
    """
    from telemetry_ingest.batch import record, run_job

    settings = Settings.from_env()
    done = run_job(command, scenario, partner, sys.stdout.buffer, sys.stderr.buffer)
    try:
        record(done, settings.lake_dir, settings.landing_dir)
    except Exception as error:  # the job ran: its status is the answer, whatever the record
        click.echo(f"telemetry job run: the run was not recorded: {error}", err=True)
        sys.exit(done.exit_status)
    click.echo(f"telemetry job run: {scenario} run {done.run_id} "
               f"{'succeeded' if done.succeeded else f'failed (exit status {done.exit_status})'}"
               f" in {(done.ended_at - done.started_at).total_seconds():.1f} s, "
               f"{len(done.lines)} console line(s) recorded", err=True)
    sys.exit(done.exit_status)


@job.command()
@click.option("--scenario", required=True, callback=_scenario, help="The job's scenario.")
@click.option("--partner", default="batch", show_default=True)
@click.option("--file", "path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The console log (a spooled job output, say).")
@click.option("--started", callback=_time,
              help="When the job started (ISO-8601); default: when it ended.")
@click.option("--ended", callback=_time,
              help="When it ended (ISO-8601); default: the file's modification time.")
@click.option("--exit-status", type=int,
              help="Its return code; default: the highest MAXCC=, COND CODE or RC= in the log.")
def ingest(scenario: str, partner: str, path: Path, started: datetime | None,
           ended: datetime | None, exit_status: int | None) -> None:
    """Record a console log that already exists as a file as one run of a batch job."""
    from telemetry_ingest.batch import ingest_file, record

    settings = Settings.from_env()
    ended = ended or datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    started = started or ended
    if ended < started:
        raise click.BadParameter("ends before it starts", param_hint="--ended")
    try:
        done = ingest_file(path, scenario, partner, started, ended, exit_status)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        record(done, settings.lake_dir, settings.landing_dir)
    except OSError as error:
        raise click.ClickException(f"the run was not recorded: {error}") from None
    stdout_console().print(Text(f"recorded {scenario} run {done.run_id} from {path}: exit status "
                      f"{done.exit_status}, {len(done.lines)} line(s)"), soft_wrap=True)


@job.command()
@click.option("--date", "day", required=True, callback=utc_day,
              help="A UTC day: YYYY-MM-DD, today or yesterday.")
@click.option("--scenario", help="Only this scenario's runs.")
def runs(day: date, scenario: str | None) -> None:
    """List the batch-job runs that started on a UTC day."""
    from telemetry_ingest.batch import job_runs

    found = [row for row in job_runs(Settings.from_env().lake_dir).read_days(day, day)
             if scenario is None or row["scenario_id"].lower() == scenario.strip().lower()]
    if not found:
        stdout_console().print(f"no batch-job runs on {day:%Y-%m-%d}")
        return
    table = RichTable(title=Text(f"Batch-job runs on {day:%Y-%m-%d} (UTC)"), title_justify="left")
    for header in ("run", "scenario", "started", "seconds", "exit", "lines", "command"):
        table.add_column(header)
    for row in found:
        table.add_row(row["run_id"][:12], Text(row["scenario_id"]),
                      f"{row['started_at']:%H:%M:%S}",
                      f"{(row['ended_at'] - row['started_at']).total_seconds():.1f}",
                      Text(str(row["exit_status"]), style="" if row["succeeded"] else "red"),
                      str(row["lines"]), Text(row["command"]))
    stdout_console().print(table)


@job.command()
@click.option("--date", "day", required=True, callback=utc_day,
              help="A UTC day: YYYY-MM-DD, today or yesterday.")
@click.option("--scenario", help="Only this scenario's jobs.")
@click.option("--run", "run_id", help="Only this run (its id or the start of it).")
@click.option("--grep", "pattern", help="Only lines matching this regular expression.")
def lines(day: date, scenario: str | None, run_id: str | None, pattern: str | None) -> None:
    """Print the console lines of the runs that started on a UTC day, in order."""
    from telemetry_ingest.batch import console_lines

    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error as error:
        raise click.BadParameter(f"{pattern!r}: {error}", param_hint="--grep") from None
    shown = 0
    out = stdout_console()
    for row in console_lines(Settings.from_env().lake_dir).read_days(day, day):
        if scenario and row["scenario_id"].lower() != scenario.strip().lower():
            continue
        if run_id and not row["run_id"].startswith(run_id):
            continue
        if matcher and not matcher.search(row["text"]):
            continue
        shown += 1
        out.print(Text(f"{row['logged_at']:%H:%M:%S.%f}"[:-3] + f" {row['run_id'][:12]} "
                       f"{row['stream']:<7} {row['text']}"), soft_wrap=True)
    if not shown:
        out.print(f"no console lines on {day:%Y-%m-%d} match")

