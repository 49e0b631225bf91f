"""The routed outbox over a real lake and real sockets, one fault at a time: a sink that
answers garbage, a retry, an episode's resolve behind the next episode's trigger, silences
around a delivered page, a routes file edited between evaluations."""

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry_assets.mood import routing
from telemetry_core.routes import load_routes
from telemetry_core.silences import build_silence
from telemetry_notify.formats import Notice
from tests.telemetry_assets.mood.test_routes import Receiver

T0 = datetime(2026, 11, 20, 10, 0)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def notice(state: str, previous: str, at: datetime, started: datetime | None = None,
           subject: str = "checkout.quote") -> Notice:
    return Notice(
        notification_id=f"{subject}:{previous}->{state}@{at:%Y-%m-%dT%H:%M}", subject=subject,
        scenario_id=subject, scenario_name="Purchase quote", service="checkout",
        partner_id=None, previous_state=previous, state=state, as_of=at,
        episode_started=started or at, text=f"{subject} is {state}")


def routes_file(tmp_path: Path, *sinks: str, preamble: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "routes.yaml"
    path.write_text(preamble + "routes:\n  - name: oncall\n    sinks:\n"
                    + "".join(f"      - {sink}\n" for sink in sinks))
    return load_routes(path, environ={"PD_KEY": "k"})


class Garbage:
    """A TCP server that answers every request with bytes that are not HTTP."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def statuses(platform) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(row["sink_type"], row["state"], row["status"])
            for row in routing.read_deliveries(platform.lake)]


def test_a_sink_answering_garbage_fails_alone_and_is_retried_later(platform, tmp_path):
    garbage, good = Garbage(), Receiver()
    config = routes_file(tmp_path, f'{{type: alertmanager, url: "{garbage.url}"}}',
                         f'{{type: webhook, url: "{good.url}/hook"}}')
    routing.record(platform.lake, config, [notice("breaching", "healthy", T0)], [], NOW)
    sent = routing.flush(platform.lake, config, NOW)
    assert (sent.delivered, sent.failed) == (1, 1)
    assert sorted(statuses(platform)) == [("alertmanager", "breaching", "failed"),
                                          ("webhook", "breaching", "delivered")]
    # Nothing is due before the backoff; then the same delivery is tried again, under its id.
    (failed,) = [r for r in routing.read_deliveries(platform.lake) if r["status"] == "failed"]
    assert routing.flush(platform.lake, config, NOW + timedelta(seconds=5)).failed == 0
    routing.flush(platform.lake, config, NOW + timedelta(minutes=1))
    (again,) = [r for r in routing.read_deliveries(platform.lake)
                if r["sink_type"] == "alertmanager"]
    assert (again["attempts"], again["delivery_id"]) == (2, failed["delivery_id"])
    # A still-firing alert is refreshed only where its change was sent.
    assert routing.firing(routing.read_deliveries(platform.lake)) == {}
    good.close()


def test_an_episodes_resolve_is_not_superseded_by_the_next_episodes_trigger(
        platform, tmp_path, monkeypatch):
    monkeypatch.setenv("PD_KEY", "k")
    pagerduty = Receiver(answers=[202, 503])
    config = routes_file(tmp_path, f'{{type: pagerduty, routing_key_env: PD_KEY, url: '
                                   f'"{pagerduty.url}/v2/enqueue"}}')
    first = notice("breaching", "healthy", T0)
    routing.record(platform.lake, config, [first], [], NOW)
    routing.flush(platform.lake, config, NOW)
    resolve = notice("healthy", "breaching", T0 + timedelta(minutes=30), started=T0)
    routing.record(platform.lake, config, [resolve], [], NOW)
    routing.flush(platform.lake, config, NOW)  # 503: to retry
    second = notice("breaching", "healthy", T0 + timedelta(minutes=45))
    routing.record(platform.lake, config, [second], [], NOW)
    routing.flush(platform.lake, config, NOW + timedelta(minutes=5))
    events = pagerduty.bodies()
    # The refused resolve is sent again, then the new episode's trigger, under a key of its own.
    assert [e["event_action"] for e in events] == ["trigger", "resolve", "resolve", "trigger"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"] == events[2]["dedup_key"]
    assert events[3]["dedup_key"] != events[0]["dedup_key"]
    pagerduty.close()


def test_a_silence_mutes_a_page_then_says_it_once_when_it_ends_still_breaching(
        platform, tmp_path):
    hook = Receiver()
    config = routes_file(tmp_path, f'{{type: webhook, url: "{hook.url}/hook"}}')
    silence = build_silence({"scenario": "checkout.*"}, starts_at=T0,
                            ends_at=T0 + timedelta(minutes=30), now=NOW)
    routing.record(platform.lake, config, [notice("breaching", "healthy", T0 + timedelta(
        minutes=5))], [silence], NOW)
    routing.flush(platform.lake, config, NOW, judged_until=T0 + timedelta(minutes=20))
    assert hook.posts == [] and statuses(platform) == [("webhook", "breaching", "silenced")]
    for _ in range(2):
        routing.flush(platform.lake, config, NOW, judged_until=T0 + timedelta(minutes=31))
    assert [c["state"] for b in hook.bodies() for c in b["changes"]] == ["breaching"]
    hook.close()


def test_a_recovery_in_a_silence_still_closes_the_page_the_sink_got(platform, tmp_path):
    hook = Receiver()
    config = routes_file(tmp_path, f'{{type: webhook, url: "{hook.url}/hook"}}')
    routing.record(platform.lake, config, [notice("breaching", "healthy", T0)], [], NOW)
    routing.flush(platform.lake, config, NOW)
    silence = build_silence({"scenario": "*"}, starts_at=T0 + timedelta(minutes=10),
                            ends_at=T0 + timedelta(hours=2), now=NOW)
    routing.record(platform.lake, config, [notice("healthy", "breaching", T0 + timedelta(
        minutes=20), started=T0)], [silence], NOW)
    routing.flush(platform.lake, config, NOW)
    assert [c["state"] for b in hook.bodies() for c in b["changes"]] == ["breaching", "healthy"]
    hook.close()


def test_a_routes_file_edited_around_a_sink_keeps_its_queue(platform, tmp_path):
    down = Receiver(answers=[503])
    sink = f'{{type: webhook, url: "{down.url}/hook"}}'
    config = routes_file(tmp_path, sink)
    routing.record(platform.lake, config, [notice("breaching", "healthy", T0)], [], NOW)
    routing.flush(platform.lake, config, NOW)
    edited = routes_file(tmp_path, sink, preamble="# a comment and a blank line\n\n")
    assert routing.flush(platform.lake, edited, NOW + timedelta(minutes=1)).delivered == 1
    assert statuses(platform) == [("webhook", "breaching", "delivered")]
    down.close()


def test_a_notice_recorded_by_another_version_is_still_read(platform, tmp_path):
    hook = Receiver()
    config = routes_file(tmp_path, f'{{type: webhook, url: "{hook.url}/hook"}}')
    routing.record(platform.lake, config, [notice("breaching", "healthy", T0)], [], NOW)
    rows = routing.read_deliveries(platform.lake)
    rows[0]["notice"] = json.dumps({**json.loads(rows[0]["notice"]), "added_later": 1})
    routing._save(platform.lake, rows)
    assert routing.flush(platform.lake, config, NOW).delivered == 1
    hook.close()
