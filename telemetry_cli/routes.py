"""`telemetry routes check`: validate a routes file; `telemetry silence` and `telemetry silences`:
mute matching notifications for a window, and list the silences."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table as RichTable
from rich.text import Text

from telemetry_cli.options import CommandFailed, current_user, stdout_console
from telemetry_cli.slo import reference_scenarios
from telemetry_core.routes import RoutesFileError, load_routes, routes_path
from telemetry_core.settings import Settings
from telemetry_core.silences import MATCH_KEYS, SilenceError, SilenceStore, build_silence


@click.group()
def routes() -> None:
    """The routes file (TELEMETRY_ROUTES): which mood changes and events go to which sinks."""


@routes.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Validate FILE (default: TELEMETRY_ROUTES) against scenarios.csv, customers.csv and the
    environment (every secret variable it names must be set): one line per route, or every
    error as path:LINE: reason and exit status 1. For CI."""
    path = file or routes_path()
    if path is None:
        raise click.UsageError("give a routes FILE or set TELEMETRY_ROUTES")
    settings = Settings.from_env()
    scenarios, _ = reference_scenarios(settings)
    partners = _partner_tiers(settings)
    try:
        config = load_routes(path, {s: row[1] for s, row in scenarios.items()}, partners)
    except RoutesFileError as error:
        raise CommandFailed("\n".join(error.errors)) from error
    console = stdout_console()
    for line in config.describe():
        console.print(Text(line), soft_wrap=True)
    console.print(f"{path}: {len(config.routes)} route(s), {len(config.events)} event route(s), "
                  "valid")


def _partner_tiers(settings: Settings) -> dict[str, str | None]:
    from telemetry_assets.assets.reference import ReferenceDataError, read_reference_csv
    from telemetry_assets.checks.schemas import CustomerReference
    from telemetry_assets.tables import CUSTOMERS

    try:
        customers = read_reference_csv(settings.reference_dir / f"{CUSTOMERS.name}.csv",
                                       CustomerReference)
    except ReferenceDataError as error:
        raise CommandFailed(str(error)) from error
    return dict(zip(customers["partner_id"], customers["tier"], strict=True))


def _moment(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time such as "
                                 "2026-11-20T10:00:00Z", param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command()
@click.option("--match", "matches", multiple=True, required=True, metavar="KEY=GLOB",
              help=f"What to mute, repeatable; KEY is one of {', '.join(MATCH_KEYS)}.")
@click.option("--until", required=True, help="When the silence ends (ISO-8601, UTC if no "
              "offset), or a duration from its start such as 90m or 2h.")
@click.option("--start", help="When it starts (ISO-8601); default now.")
@click.option("--reason", default="", help="Why, for whoever reads the muted notifications.")
def silence(matches: tuple[str, ...], until: str, start: str | None, reason: str) -> None:
    """Mute the notifications that match, for a maintenance window; the changes are still
    recorded, and shown as silenced."""
    match: dict[str, str] = {}
    for item in matches:
        key, sep, glob = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=GLOB", param_hint="--match")
        match[key.strip()] = glob.strip()
    starts = _moment(start, "--start") if start else datetime.now(UTC)
    from telemetry_assets.mood.burn_rates import parse_duration

    try:
        ends = starts + timedelta(minutes=parse_duration(until))
    except ValueError:
        ends = _moment(until, "--until")
    try:
        made = build_silence(match, ends, starts, reason, created_by=f"cli:{current_user()}")
    except SilenceError as error:
        raise click.UsageError(f"silence not recorded: {error}") from None
    SilenceStore(Settings.from_env().lake_dir).add([made])
    stdout_console().print(Text(f"recorded {made.silence_id}: {made.describe()}"), soft_wrap=True)


@click.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 60),
              help="How far back to list.")
def silences(days: int) -> None:
    """List the silences active now or in the last DAYS days."""
    now = datetime.now(UTC)
    found = SilenceStore(Settings.from_env().lake_dir).around(now - timedelta(days=days),
                                                              now + timedelta(days=31))
    if not found:
        stdout_console().print("no silences")
        return
    table = RichTable(title="Silences (UTC)", title_justify="left")
    for header in ("id", "active", "from", "until", "scenario", "service", "partner", "reason",
                   "by"):
        table.add_column(header)
    for s in found:
        table.add_row(s.silence_id, "yes" if s.active_at(now) else "no",
                      f"{s.starts_at:%Y-%m-%d %H:%M}", f"{s.ends_at:%Y-%m-%d %H:%M}",
                      Text(s.scenario), Text(s.service), Text(s.partner or "*"), Text(s.reason),
                      Text(s.created_by))
    stdout_console().print(table)

