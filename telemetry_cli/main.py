"""The `telemetry` command: what a person does without the Dagster UI."""

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
import duckdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from telemetry_cli.annotate import annotate, annotations
from telemetry_cli.dashboard import dashboard
from telemetry_cli.explain import explain
from telemetry_cli.job import job
from telemetry_cli.options import utc_day
from telemetry_cli.presence import presence
from telemetry_cli.routes import routes, silence, silences
from telemetry_cli.slo import slo as slo_group
from telemetry_cli.statement import statement
from telemetry_core.settings import Settings
from telemetry_ingest.commands import consume, serve

# Piped output (CI logs, files) would otherwise be wrapped at 80 columns.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _moment(_ctx, _param, value: str | None) -> datetime | None:
    from telemetry_cli.launcher import BadRange, parse_moment

    if value is None:
        return None
    try:
        return parse_moment(value)
    except BadRange as error:
        raise click.BadParameter(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="telemetry-availability", prog_name="telemetry")
def main() -> None:
    """Service availability platform: generate traffic, run and backfill the pipeline."""


@main.command()
@click.option("--start", required=True, callback=_moment,
              help="First hour or day (UTC), e.g. 2026-11-20 or 2026-11-20T10:00.")
@click.option("--end", required=True, callback=_moment,
              help="End of the range, exclusive, e.g. 2026-11-21.")
def backfill(start: datetime, end: datetime) -> None:
    """Run every stage over [START, END): hourly stages as one run, then daily stages as one run."""
    from telemetry_assets.jobs import HOURLY_JOB
    from telemetry_cli.launcher import (
        BackfillStopped,
        BadRange,
        RunFailed,
        instance_for_cli,
        later_hours_to_rerun,
        plan_backfill,
        planned_jobs,
    )
    from telemetry_cli.launcher import backfill as run_backfill

    try:
        plan = plan_backfill(start, end)
    except BadRange as error:
        raise click.BadParameter(str(error), param_hint="--start/--end") from error
    console.print(
        f"Backfill {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC: "
        f"{len(plan.hourly_keys)} hours, {len(plan.daily_keys)} days"
    )
    for day in plan.partial_days:
        console.print(f"  skipping the day {day.reason()}")
    instance = instance_for_cli()
    started = time.perf_counter()
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, int] = {}

        def on_progress(progress) -> None:
            if progress.stage not in tasks:
                tasks[progress.stage] = bar.add_task(progress.stage, total=progress.total)
            bar.update(tasks[progress.stage], completed=progress.done)

        done: list[str] = []

        def on_run(job_name: str, run_id: str) -> None:
            done.append(job_name)
            bar.console.print(f"  {job_name}: run {run_id} succeeded")
            if job_name == HOURLY_JOB and (later := later_hours_to_rerun(instance, run_id)):
                first_day = date.fromisoformat(later[0][:10])
                after_last = date.fromisoformat(later[-1][:10]) + timedelta(days=1)
                bar.console.print(
                    f"  {len(later)} later hour(s) counted events this range holds earlier "
                    f"copies of: {', '.join(later)}. The late_landing_files sensor re-runs "
                    "them; without the daemon, run `telemetry backfill --start "
                    f"{first_day} --end {after_last}`.", markup=False)

        with stop_signals() as stop_signal:
            try:
                run_ids = run_backfill(plan, instance, on_progress, on_run,
                                       should_stop=lambda: stop_signal() is not None)
            except (KeyboardInterrupt, RunFailed, BackfillStopped) as error:
                signum = stop_signal()
                if signum is None:
                    if isinstance(error, KeyboardInterrupt):
                        raise
                    # The error may quote a reference CSV, whose values must not be markup.
                    console.print(Text.assemble(("error:", "red"), " ", str(error)))
                    sys.exit(1)
                left = [job for job, _ in planned_jobs(plan) if job not in done]
                console.print(
                    f"stopped by {signal.Signals(signum).name}: done: "
                    f"{', '.join(done) or 'none'}; not done: {', '.join(left)}. A run it "
                    "interrupted is marked failed and its partitions keep their previous "
                    "files; run the same command again to finish.", markup=False)
                sys.exit(128 + signum)
    console.print(f"Done in {time.perf_counter() - started:.1f}s with {len(run_ids)} runs.")


@contextmanager
def stop_signals() -> Iterator[Callable[[], int | None]]:
    """Notice SIGTERM and SIGINT while the pipeline runs; yields a function that tells the first
    one received, if any.

    Dagster takes both signals over while a run executes, interrupting the step in hand; between
    runs they interrupt at once. Either way the signal is seen here through the wakeup fd,
    which the interpreter writes whatever handler is installed, so no later run starts.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    received: list[int] = []

    def interrupt(_signum: int, _frame) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt)
                for signum in (signal.SIGTERM, signal.SIGINT)}

    def first_received() -> int | None:
        with suppress(BlockingIOError):
            received.extend(number for number in os.read(read_end, 64)
                            if number in (signal.SIGTERM, signal.SIGINT))
        return received[0] if received else None

    try:
        yield first_received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(read_end)
        os.close(write_end)


@main.command()
@click.option("--start", required=True, callback=_moment, help="First hour or day (UTC).")
@click.option("--end", required=True, callback=_moment, help="End of the range, exclusive.")
@click.option("--events-per-hour", default=20_000, show_default=True, type=click.IntRange(min=0),
              help="Average events per hour (the diurnal curve moves each hour around it).")
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed, same files.")
@click.option("--files-per-hour", default=4, show_default=True, type=click.IntRange(min=1))
def generate(start: datetime, end: datetime, events_per_hour: int, seed: int,
             files_per_hour: int) -> None:
    """Write synthetic landing files for [START, END) under TELEMETRY_LANDING_DIR."""
    from telemetry_synth import generate_landing

    settings = Settings.from_env()
    try:
        summary = generate_landing(
            settings.landing_dir, settings.reference_dir, start, end,
            events_per_hour=events_per_hour, seed=seed, files_per_hour=files_per_hour,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    console.print(
        f"Wrote {summary.events_written:,} events and {summary.malformed_lines:,} malformed "
        f"lines in {summary.files_written} files under {settings.landing_dir / 'events'}",
        markup=False,
    )


def _not_published(day: date, days: list[date], shown: int = 7) -> str:
    if not days:
        return "nothing is published yet: run the pipeline first (telemetry backfill)"
    listed = ", ".join(f"{published:%Y-%m-%d}" for published in days[:shown])
    more = f" and {len(days) - shown} more" if len(days) > shown else ""
    return (f"nothing is published for {day:%Y-%m-%d}; published days (newest first): "
            f"{listed}{more}")


def print_availability(day: date) -> None:
    """The day's published availability per scenario, worst first (provisional, with its as-of
    time, for a day whose hours are not all run yet); a ClickException when the day has none,
    naming the days that have."""
    from telemetry_assets.dashboard.data import published_days
    from telemetry_assets.live import read_current
    from telemetry_assets.mood.burn_rates import latest_data_time, provisional_since
    from telemetry_assets.resources import TelemetryStore
    from telemetry_assets.tables import SCENARIO_DAILY

    lake = TelemetryStore().lake

    def day_rows(con) -> tuple[list, list[date], datetime | None]:
        days = published_days(con)
        if day not in days:
            return [], days, None
        since = provisional_since(con)
        as_of = latest_data_time(con) if since and day >= since.date() else None
        return con.execute(
            f"""
            select scenario_id, scenario_name, total_requests, failed_requests,
                availability_pct, slo_target_pct, slo_met, p95_latency_ms
            from {SCENARIO_DAILY.qualified_name}
            where date = $day
            order by availability_pct, scenario_id
            """,
            {"day": day},
        ).fetchall(), days, as_of

    try:
        reading = read_current(lake, day_rows, days=[day])
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from error
    except duckdb.Error as error:
        damage = lake.describe_damage(error)
        if damage is None:
            raise
        raise click.ClickException(damage) from error
    rows, days, provisional_as_of = reading.value
    err = Console(stderr=True)
    for damage in reading.damage:
        # Soft-wrapped: a path broken across lines could not be copied.
        err.print(Text.assemble(("left out a damaged file:", "yellow"), " ", damage),
                  soft_wrap=True)
    if not rows:
        if reading.damage:
            raise click.ClickException(
                f"nothing can be read for {day:%Y-%m-%d}: see the damaged files above")
        raise click.ClickException(_not_published(day, days))
    title = f"Availability per scenario, {day:%Y-%m-%d} (worst first)"
    if provisional_as_of is not None:
        title += (f"\nPROVISIONAL as of {provisional_as_of:%Y-%m-%d %H:%M:%S} UTC: replaced by "
                  "the exact figures when its hours are run")
    table = RichTable(title=title)
    for header in ("scenario", "name", "requests", "failed", "availability %", "SLO %",
                   "SLO met", "p95 ms"):
        table.add_column(header, justify="left" if header in ("scenario", "name") else "right")
    for scenario, name, total, failed, availability, slo, met, p95 in rows:
        # Ids and names come from the reference CSVs: Text, so that rich reads no markup in them.
        table.add_row(
            Text(scenario), Text(name or ""), f"{total:,}", f"{failed:,}", f"{availability:.3f}",
            f"{slo:g}", "yes" if met else "[red]no[/red]",
            f"{p95:.0f}" if p95 is not None else "-",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@main.command()
@click.option("--date", "day", required=True, callback=utc_day,
              help="The day (UTC): 2026-11-20, today or yesterday.")
def availability(day: date) -> None:
    """Print the published availability of every scenario for one day."""
    print_availability(day)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
def pulse(as_json: bool) -> None:
    """Print each scenario's service level over the last 10 minutes of data, worst first, and
    its overall level over the error-budget window against its SLO."""
    import json

    from telemetry_assets.live import read_current
    from telemetry_assets.mood.pulse import current_pulse
    from telemetry_assets.resources import MoodSettings, TelemetryStore

    lake, policy = TelemetryStore().lake, MoodSettings().policy
    try:
        reading = read_current(lake, lambda con: current_pulse(con, policy))
    except (FileNotFoundError, duckdb.CatalogException) as missing:
        raise click.ClickException(
            f"no pulse yet: {missing} (run the pipeline first: telemetry backfill)") from missing
    except duckdb.Error as error:
        damage = lake.describe_damage(error)
        if damage is None:
            raise
        raise click.ClickException(damage) from error
    for damage in reading.damage:
        console.print(Text.assemble(("left out a damaged file:", "yellow"), " ", damage),
                      soft_wrap=True)
    found = reading.value
    if found is None:
        raise click.ClickException("no pulse yet: no minute aggregates (run the pipeline first)")
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
        return
    click.echo(f"Pulse as of {found.as_of:%Y-%m-%d %H:%M} UTC"
               f"{' (provisional)' if found.provisional else ''}:")
    for line in found.lines():
        click.echo(f"  {line}")


@main.command()
@click.option("--events-per-hour", default=20_000, show_default=True, type=click.IntRange(min=1))
def demo(events_per_hour: int) -> None:
    """Generate yesterday's traffic, backfill it, print its availability and mood, build the
    dashboard."""
    settings = Settings.from_env()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - timedelta(days=1)
    span = ["--start", f"{day:%Y-%m-%d}", "--end", f"{today:%Y-%m-%d}"]
    generate.main([*span, "--events-per-hour", str(events_per_hour)], standalone_mode=False)
    backfill.main(span, standalone_mode=False)
    print_availability(day.date())
    from telemetry_cli.dashboard import build_for_demo, print_mood

    page, mood = build_for_demo()
    print_mood(mood, Console(width=None if sys.stdout.isatty() else 160))
    warehouse = Path(settings.duckdb_path).absolute()
    console.print(
        f"\nWhere to look:\n"
        f"  published tables   views in {warehouse} (schema published; "
        "open it read-only, see README)\n"
        f"  one day's figures  telemetry availability --date {day:%Y-%m-%d}\n"
        "  rejected lines     quarantine.rejected_events in the same warehouse\n"
        "  Dagster UI         make ui, then http://127.0.0.1:3000\n"
        f"  dashboard          {page} (open it in a browser), or\n"
        "                     telemetry dashboard --port 8050, then http://127.0.0.1:8050/",
        markup=False,
    )


main.add_command(serve)
main.add_command(consume)
main.add_command(dashboard)
main.add_command(slo_group)
main.add_command(statement)
main.add_command(annotate)
main.add_command(annotations)
main.add_command(job)
main.add_command(explain)
main.add_command(routes)
main.add_command(silence)
main.add_command(silences)
main.add_command(presence)
