"""`telemetry presence`: the service mood as XMPP presence, kept for as long as it runs.

The account of every `xmpp` sink of the routes file gets a `PresenceBoard`
(`telemetry_notify/xmpp.py`; routes on one account share it): one session per subject, a
resource of the account, showing the subject's latest recorded state
(`alerts.mood_notifications`) and the text of that change, plus `overall`, the worst of them.
A route shows every subject in its scope whatever its severity and state conditions: presence
is the current state, not a notification.
"""

import logging
import re
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from telemetry_cli.options import CommandFailed, stdout_console
from telemetry_core.routes import STATES, Change, Route, RoutesConfig, RoutesFileError, Sink

OVERALL = "overall"
DEFAULT_PORT = 5222
# The icon code that leads the Slack-formatted text of an all-traffic change (`:red_circle: `).
_ICON = re.compile(r"^:[a-z0-9_+-]+:\s+")
# "checkout.quote (Purchase quote) is breaching: " before the figures, for the stdout line.
_LABEL = re.compile(r"^.*? is (?:healthy|degraded|breaching)(?: again)?: ")

if TYPE_CHECKING:
    from telemetry_notify.xmpp import PresenceBoard

Level = tuple[str, str]


@dataclass
class Board:
    """One account's presence: the routes whose subjects it shows, and what it last showed."""

    jid: str
    sink: Sink
    routes: list[Route]
    watchers: list[str]
    shown: dict[str, Level] = field(default_factory=dict)
    failing: str | None = None
    presence: "PresenceBoard | None" = None  # once started


def parse_address(value: str) -> tuple[str, int]:
    """`host:port`, `host` (the client port, 5222) or `[v6 address]:port`."""
    text = value.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"address {value!r} is not [host]:port")
        port = rest[1:]
    elif text.count(":") > 1:
        raise ValueError(f"address {value!r}: write an IPv6 address as [host]:port")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"address {value!r} has no host")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {value!r}: {port!r} is not a port number")
    return host, int(port)


def boards_of(config: RoutesConfig) -> list[Board]:
    """A board per XMPP account: two routes on one account share its board (two sessions under
    one resource would take it from each other), so they must agree on how to log in."""
    boards: dict[str, Board] = {}
    where = config.source or "routes file"
    for route in config.routes:
        for sink in route.sinks:
            if sink.type != "xmpp":
                continue
            jid = sink.settings["jid"]
            board = boards.get(jid.lower())
            if board is None:
                boards[jid.lower()] = Board(jid, sink, [route], list(sink.settings["watchers"]))
                continue
            login = ("address", "plaintext")
            if (any(board.sink.settings[k] != sink.settings[k] for k in login)
                    or board.sink.secret_vars != sink.secret_vars):
                raise CommandFailed(
                    f"{where}:{sink.line}: the xmpp sink for {jid} logs in unlike the one on "
                    f"line {board.sink.line} (password_env, address, plaintext): one account "
                    "has one presence, so give its sinks the same settings")
            if route not in board.routes:
                board.routes.append(route)
            # No watchers listed means anyone may subscribe: so it stays if one sink says so.
            more = sink.settings["watchers"]
            board.watchers = (board.watchers + [w for w in more if w not in board.watchers]
                              if board.watchers and more else [])
    return list(boards.values())


def latest_changes(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str | None], Mapping]:
    """Each subject's (scenario, partner) latest recorded change; the outbox holds one row per
    change and webhook URL, so a change is taken once, by its notification id."""
    seen: set[str] = set()
    changes = []
    for row in rows:
        if row["notification_id"] not in seen:
            seen.add(row["notification_id"])
            changes.append(row)
    latest: dict[tuple[str, str | None], Mapping] = {}
    for row in sorted(changes, key=lambda r: (r["as_of"], r["recorded_at"])):
        latest[row["scenario_id"], row.get("partner_id")] = row
    return latest


def subject_of(scenario_id: str, partner_id: str | None) -> str:
    return f"{scenario_id}@{partner_id}" if partner_id else scenario_id


def status_of(row: Mapping[str, Any]) -> str:
    """The change's text as a person reads it: an all-traffic row holds it Slack-formatted (an
    icon code, escaped names), a partner's row plain."""
    text = row["text"] or ""
    if row.get("partner_id") is None:
        from telemetry_assets.webhooks import slack_unescaped

        text = slack_unescaped(_ICON.sub("", text, count=1))
    return text


def overall_of(levels: Mapping[str, Level]) -> Level:
    """The worst state of the subjects, and how many are in each state. Only the subjects seen
    in the outbox are counted: a scenario never notified about is healthy, but its name is not
    known here, so it is left out of the count rather than guessed."""
    if not levels:
        return "healthy", "no change of mood recorded yet"
    states = [state for state, _ in levels.values()]
    worst = max(states, key=STATES.index)
    counts = [f"{states.count(state)} {state}" for state in reversed(STATES)
              if state in states]
    return worst, ", ".join(counts)


def levels_for(board: Board, latest: Mapping[tuple[str, str | None], Mapping],
               services: Mapping[str, str | None], tiers: Mapping[str, str | None],
               ) -> dict[str, Level]:
    """What the board shows: every subject one of its routes takes, and `overall`."""
    levels: dict[str, Level] = {}
    for (scenario_id, partner_id), row in sorted(latest.items(), key=lambda item: (
            item[0][0], item[0][1] or "")):
        change = Change(scenario_id=scenario_id,
                        service=services.get(scenario_id.partition("/")[0]),
                        state=row["state"], previous_state=row["previous_state"],
                        partner_id=partner_id, tier=tiers.get(partner_id) if partner_id else None)
        # Presence shows the current state of the route's scope: its severity and state
        # conditions choose which changes page someone, not which subjects it shows.
        if any(route.match.matches(change, episode_open=True) for route in board.routes):
            levels[subject_of(scenario_id, partner_id)] = (row["state"], status_of(row))
    levels[OVERALL] = overall_of(levels)
    return levels


def _services(lake: Any) -> dict[str, str | None]:
    from telemetry_assets.tables import SCENARIOS
    from telemetry_core.sql import compute_connection

    with closing(compute_connection()) as con:
        if not lake.register(con, SCENARIOS, existing_only=True):
            return {}
        return dict(con.execute(f"select scenario_id, service from {SCENARIOS.name}").fetchall())


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _shown_line(board: Board, subject: str, level: Level, several: bool) -> str:
    state, status = level
    figures = _LABEL.sub("", status, count=1)
    return f"{board.jid} " * several + f"{subject}: {state} — {figures}"


def one_pass(lake: Any, boards: list[Board], tiers: Mapping[str, str | None],
             interval: float | None) -> bool:
    """Read the outbox, update every board; False if anything failed (said on stderr)."""
    from telemetry_assets.mood.outbox import read_notifications
    from telemetry_notify.xmpp import PresenceError

    retrying = f" (retrying every {interval:g} s)" if interval else ""
    try:
        latest = latest_changes(read_notifications(lake))
        services = _services(lake)
    except Exception as error:  # a lake being written is read again next time
        click.echo(f"presence: cannot read the recorded mood changes: {_one_line(error)}"
                   f"{retrying}", err=True)
        return False
    console = stdout_console()
    ok = True
    for board in boards:
        levels = levels_for(board, latest, services, tiers)
        assert board.presence is not None
        try:
            board.presence.update(levels)
        except (PresenceError, ValueError, TimeoutError, OSError) as error:
            ok = False
            message = _one_line(error)
            if message != board.failing:
                # A PresenceError names the account and subject already.
                said = message if isinstance(error, PresenceError) else (
                    f"XMPP presence for {board.jid}: {message}")
                click.echo(f"{said}{retrying}", err=True)
            board.failing = message
            continue
        if board.failing is not None:
            click.echo(f"XMPP presence for {board.jid}: sent again", err=True)
            board.failing = None
        for subject, level in levels.items():
            if board.shown.get(subject) != level:
                console.print(Text(_shown_line(board, subject, level, len(boards) > 1)),
                              soft_wrap=True)
        board.shown = dict(levels)
    sys.stdout.flush()
    return ok


@click.command()
@click.option("--routes", "routes_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The routes file; default TELEMETRY_ROUTES.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between two readings of the recorded mood changes.")
@click.option("--once", is_flag=True,
              help="One pass, then close the sessions and exit: status 1 if a board failed.")
@click.pass_context
def presence(ctx: click.Context, routes_file: Path | None, interval: float, once: bool) -> None:
    """Show the mood as the XMPP presence of each xmpp sink's account in the routes file: one
    resource per scenario (scenario@partner for a partner's own mood) and `overall`, `show`
    chat, away or dnd for healthy, degraded or breaching, its status text the latest change.
    Runs until SIGTERM or SIGINT, which end the sessions (watchers see them unavailable)."""
    from telemetry_assets.mood.routing import load_configured_routes
    from telemetry_assets.resources import TelemetryStore
    from telemetry_core.routes import routes_path
    from telemetry_notify.xmpp import PresenceBoard

    path = routes_file or routes_path()
    if path is None:
        raise click.UsageError("give --routes FILE or set TELEMETRY_ROUTES")
    lake = TelemetryStore().lake
    try:
        config = load_configured_routes(lake, path)
    except RoutesFileError as error:
        raise CommandFailed("\n".join(error.errors)) from None
    boards = boards_of(config)
    if not boards:
        raise CommandFailed(f"{path}: no route has an xmpp sink, so there is no presence to "
                            "keep (add a sink such as {type: xmpp, jid: mood@example.org, "
                            "password_env: XMPP_PASSWORD})")
    settings = []
    for board in boards:
        address = board.sink.settings["address"]
        try:
            settings.append(parse_address(address) if address else None)
        except ValueError as error:
            raise CommandFailed(f"{path}:{board.sink.line}: {error}") from None
    # The board reports its failures by raising them, said here in one line each; slixmpp's own
    # log would repeat them, with tracebacks, and asyncio's would report each task slixmpp
    # drops after a failed attempt ("Task was destroyed but it is pending").
    for name in ("slixmpp", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("telemetry_notify.xmpp").setLevel(logging.ERROR)

    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set())
                for number in (signal.SIGTERM, signal.SIGINT)}
    ok = True
    try:
        for board, address in zip(boards, settings, strict=True):
            try:
                board.presence = PresenceBoard(
                    board.jid, board.sink.secret("password") or "", address,
                    allow_plaintext=board.sink.settings["plaintext"], watchers=board.watchers)
            except ValueError as error:
                raise CommandFailed(f"{path}:{board.sink.line}: {error}") from None
        while True:
            ok = one_pass(lake, boards, config.partners, None if once else interval)
            if once or stop.wait(interval):
                break
    finally:
        for board in boards:
            if board.presence is not None:
                try:
                    board.presence.close()
                except Exception as error:  # exiting anyway
                    click.echo(f"XMPP presence for {board.jid}: closing: {_one_line(error)}",
                               err=True)
        for number, handler in previous.items():
            signal.signal(number, handler)
    if once and not ok:
        ctx.exit(1)
