"""`telemetry presence` as a process, against a real Prosody, over mood changes that a real
pipeline run and the real mood sensor recorded.

The data is that of tests/telemetry_assets/mood/test_routes.py: in the hour 2026-11-20 10:00 a
third of fabrikam's quotes and half the searches fail (both scenarios breach); from 11:00 all is
well. The route takes `checkout.*` only, and only changes to breaching: presence shows the
current state of its scope whatever those conditions, so the recovery is shown too, and
search.query never is.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from telemetry_cli.main import main
from telemetry_cli.presence import boards_of, latest_changes, levels_for
from telemetry_core.routes import load_routes
from tests.telemetry_assets.mood.test_routes import OUTAGE, RECOVERY, land_and_run, tick
from tests.telemetry_notify.servers import Prosody, XmppClient, wait_until

TELEMETRY = Path(sys.executable).with_name("telemetry")
PASSWORD_VAR = "PRESENCE_TEST_XMPP_PASSWORD"
SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")


@pytest.fixture
def accounts(prosody: Prosody) -> tuple[str, str]:
    return prosody.create_account("mood", "mood-secret"), prosody.create_account("sre", "sre-pw")


@pytest.fixture
def watcher(prosody: Prosody, accounts: tuple[str, str]) -> Iterator[XmppClient]:
    client = XmppClient(prosody, accounts[1], "sre-pw").start()
    yield client
    client.stop()


def write_routes(path: Path, prosody: Prosody, watcher: str) -> Path:
    path.write_text(f"""\
routes:
  - name: presence
    match: {{scenario: "checkout.*", state: breaching}}
    sinks:
      - type: xmpp
        jid: mood@{prosody.host}
        password_env: {PASSWORD_VAR}
        address: "{prosody.host_address}:{prosody.port}"
        plaintext: true
        watchers: [{watcher}]
""")
    return path


def presence_command(routes: Path, *args: str) -> list[str]:
    return [str(TELEMETRY), "presence", "--routes", str(routes), *args]


def environment(password: str = "mood-secret") -> dict[str, str]:
    # The platform fixture's TELEMETRY_DATA_DIR and DAGSTER_HOME are in os.environ.
    return {**os.environ, PASSWORD_VAR: password}


def shown(watcher: XmppClient, mood: str, since: int = 0) -> list[tuple[str, str, str]]:
    """(resource, type, status) of each presence from the account but subscription ones; an
    available presence's type is its show."""
    return [(p.resource, p.type, p.status) for p in watcher.presences(of=mood)[since:]
            if p.type not in SUBSCRIPTION_TYPES]  # fmt: skip


def seen(watcher: XmppClient, mood: str, resource: str, kind: str, status: str = "",
         since: int = 0) -> bool:
    return any(r == resource and t == kind and s.startswith(status)
               for r, t, s in shown(watcher, mood, since))


def test_the_watcher_sees_the_mood_change_then_recover_and_the_sessions_end(
        platform, prosody, accounts, watcher, monkeypatch, tmp_path):
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "50")
    monkeypatch.setenv("TELEMETRY_MOOD_RULES", "page:14.4:1h:5m,page:6:6h:30m")
    monkeypatch.setenv("TELEMETRY_MOOD_BUDGET_WINDOW", "1h")
    monkeypatch.delenv("TELEMETRY_ROUTES", raising=False)
    mood, sre = accounts
    routes = write_routes(tmp_path / "routes.yaml", prosody, sre)
    platform.run_reference()
    land_and_run(platform, OUTAGE)

    # Long-running: the account answers the watcher's subscription, then shows each change
    # recorded after it started.
    running = subprocess.Popen(presence_command(routes, "--interval", "0.5"), env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        watcher.subscribe(mood)
        wait_until(lambda: seen(watcher, mood, "overall", "chat", "no change of mood recorded"),
                   timeout=30, what="overall healthy before any change")
        cursor, _ = tick(platform, None)
        wait_until(lambda: seen(watcher, mood, "checkout.quote", "dnd",
                                "checkout.quote (Purchase quote) is breaching: burning "),
                   timeout=20, what="checkout.quote breaching")  # fmt: skip
        wait_until(lambda: seen(watcher, mood, "overall", "dnd", "1 breaching"),
                   what="overall breaching")
        running.send_signal(signal.SIGTERM)
        out, err = running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    assert "overall: healthy — no change of mood recorded yet" in lines
    (quote,) = [line for line in lines if line.startswith("checkout.quote: ")]
    assert quote.startswith("checkout.quote: breaching — burning 33.3x over 1h")
    assert "overall: breaching — 1 breaching" in lines
    wait_until(lambda: seen(watcher, mood, "checkout.quote", "unavailable")
               and seen(watcher, mood, "overall", "unavailable"),
               what="the sessions ended on SIGTERM")  # fmt: skip
    # Out of the route's scope: search.query breached too, never shown. (The one presence
    # without a resource is the server's answer for the account before it was online.)
    assert {resource for resource, *_ in shown(watcher, mood)} == {"", "checkout.quote",
                                                                    "overall"}

    before = len(watcher.presences(of=mood))
    land_and_run(platform, RECOVERY)
    tick(platform, cursor)
    once = subprocess.run(presence_command(routes, "--once"), env=environment(),
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    quote, overall = once.stdout.splitlines()
    assert quote.startswith("checkout.quote: healthy — no burn-rate rule fires")
    assert overall == "overall: healthy — 1 healthy"
    wait_until(lambda: seen(watcher, mood, "checkout.quote", "chat",
                            "checkout.quote (Purchase quote) is healthy again", since=before)
               and seen(watcher, mood, "overall", "chat", "1 healthy", since=before),
               what="checkout.quote healthy again")  # fmt: skip
    # --once sent them, then ended its sessions.
    wait_until(lambda: seen(watcher, mood, "overall", "unavailable", since=before),
               what="the --once sessions ended")


def test_a_wrong_password_is_one_clear_line_and_a_failed_once(prosody, accounts, monkeypatch,
                                                              tmp_path):
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "data"))
    routes = write_routes(tmp_path / "routes.yaml", prosody, "sre@localhost")
    once = subprocess.run(presence_command(routes, "--once"), env=environment("not-it"),
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 1
    (line,) = once.stderr.splitlines()
    assert "mood@localhost" in line and "refused the account's password" in line
    assert "not-it" not in once.stderr + once.stdout
    assert once.stdout == ""


def test_a_bad_routes_file_or_one_without_xmpp_fails_cleanly(monkeypatch, tmp_path):
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(PASSWORD_VAR, "x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - name: presence\n    sinks:\n"
                   f"      - {{type: xmpp, jid: mood, password_env: {PASSWORD_VAR}}}\n")
    result = CliRunner().invoke(main, ["presence", "--routes", str(bad), "--once"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"{bad}:4: jid 'mood' is not an XMPP address such as "
                                     "mood@example.org")

    no_xmpp = tmp_path / "no-xmpp.yaml"
    no_xmpp.write_text("routes:\n  - name: oncall\n    sinks:\n"
                       "      - {type: alertmanager, url: 'http://127.0.0.1:9093'}\n")
    result = CliRunner().invoke(main, ["presence", "--routes", str(no_xmpp), "--once"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{no_xmpp}: no route has an xmpp sink")
    assert result.exception is None or isinstance(result.exception, SystemExit)

    bad_address = tmp_path / "address.yaml"
    bad_address.write_text("routes:\n  - name: presence\n    sinks:\n      - type: xmpp\n"
                           f"        jid: mood@localhost\n        password_env: {PASSWORD_VAR}\n"
                           "        address: 'localhost:xmpp'\n")
    result = CliRunner().invoke(main, ["presence", "--routes", str(bad_address), "--once"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"{bad_address}:4: address 'localhost:xmpp': 'xmpp' is "
                                     "not a port number")


def row(scenario: str, previous: str, state: str, minute: int, text: str,
        partner: str | None = None, url: str = "") -> dict:
    at = datetime(2026, 11, 20, 10, minute)
    return {"notification_id": f"{scenario}@{partner}:{previous}->{state}@{minute}",
            "scenario_id": scenario, "partner_id": partner, "previous_state": previous,
            "state": state, "as_of": at, "text": text, "url": url, "recorded_at": at}


def test_a_board_shows_each_subject_of_its_scope_once_in_its_latest_state(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv(PASSWORD_VAR, "x")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
routes:
  - name: presence
    match: {{service: checkout, state: breaching}}
    sinks: [{{type: xmpp, jid: mood@localhost, password_env: {PASSWORD_VAR}}}]
  - name: contoso
    match: {{partner: contoso}}
    sinks: [{{type: xmpp, jid: mood@localhost, password_env: {PASSWORD_VAR}}}]
""")
    config = load_routes(routes, partners={"contoso": "gold"})
    rows = [
        # One row per change and webhook URL: the change is one.
        *(row("checkout.quote", "healthy", "breaching", 2,
              ":red_circle: checkout.quote (Quote &lt;EU&gt;) is breaching: burning 30x",
              url=url) for url in ("http://a", "http://b")),
        row("checkout.quote", "breaching", "degraded", 30,
            ":large_yellow_circle: checkout.quote (Quote &lt;EU&gt;) is degraded: spent"),
        row("checkout.quote/fast", "healthy", "breaching", 5,
            ":red_circle: checkout.quote/fast (Quote, p95) is breaching: burning 20x"),
        row("search.query", "healthy", "breaching", 5, ":red_circle: search.query is breaching"),
        row("checkout.quote", "healthy", "degraded", 7,
            "For partner contoso: checkout.quote (Quote <EU>) is degraded: burning 2x",
            partner="contoso"),
    ]
    # One account, one board: the two routes' subjects together.
    (board,) = boards_of(config)
    levels = levels_for(board, latest_changes(rows), {"checkout.quote": "checkout",
                                                      "search.query": "search"}, config.partners)
    assert levels == {
        "checkout.quote": ("degraded", "checkout.quote (Quote <EU>) is degraded: spent"),
        "checkout.quote/fast": ("breaching",
                                "checkout.quote/fast (Quote, p95) is breaching: burning 20x"),
        "checkout.quote@contoso": ("degraded", "For partner contoso: checkout.quote (Quote <EU>) "
                                               "is degraded: burning 2x"),
        "overall": ("breaching", "1 breaching, 2 degraded"),
    }
