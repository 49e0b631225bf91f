"""Routes over a real pipeline run and the real mood sensor, to real HTTP receivers on loopback.

`checkout.quote` (SLO 99.5 %) takes 15 requests a minute from each of contoso and fabrikam, and
`search.query` (SLO 99 %) 10 from contoso. In the hour 2026-11-20 10:00-11:00 a third of
fabrikam's quotes and half the searches fail; contoso's quotes never do. From 11:00 all is well.
"""

import gzip
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
from dagster import SkipReason, build_sensor_context

from telemetry_assets import markdown
from telemetry_assets.assets.alerts import ROUTED_DELIVERIES
from telemetry_assets.automation.service_mood import service_mood_sensor
from telemetry_assets.mood.outbox import read_notifications
from telemetry_assets.mood.routing import read_deliveries
from telemetry_assets.resources import RESOURCES
from telemetry_core.routes import RoutesFileError
from telemetry_core.silences import SilenceStore, build_silence
from telemetry_notify.send import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.events import wire_event
from tests.helpers import REPO, write_landing

HISTORY_START = datetime(2026, 11, 19, 14, tzinfo=UTC)
OUTAGE = datetime(2026, 11, 20, 10, tzinfo=UTC)
RECOVERY = datetime(2026, 11, 20, 11, tzinfo=UTC)
SCHEMAS = REPO / "tests" / "schemas"
SECRET = "s3cret-for-hmac"


class Receiver:
    """An HTTP server on loopback that keeps every POST (path, headers, raw body) and answers
    the planned statuses, then 200 (202 for PagerDuty's path)."""

    def __init__(self, answers: list[int] | None = None):
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.posts.append((self.path, dict(self.headers), body))
                status = receiver.answers.pop(0) if receiver.answers else (
                    202 if self.path.endswith("/enqueue") else 200)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def bodies(self, path: str = "") -> list:
        return [json.loads(body) for p, _, body in self.posts if p.startswith(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def hour_events(hour: datetime) -> list[dict]:
    events = []
    outage = hour == OUTAGE
    for minute in range(60):
        for n in range(40):
            at = hour + timedelta(minutes=minute, seconds=n)
            scenario = "checkout.quote" if n < 30 else "search.query"
            partner = "fabrikam" if n < 15 else "contoso"
            fails = outage and ((partner == "fabrikam" and scenario == "checkout.quote"
                                 and n % 3 == 0) or (scenario == "search.query" and n % 2 == 0))
            events.append(wire_event(
                event_id=f"{at:%Y%m%d%H%M}-{n}", time=at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                cc=f"ms.b.tel.scenario={scenario};ms.b.tel.partner={partner}",
                status=5 if fails else 0))
    return events


def land_and_run(platform, *hours: datetime) -> None:  # type: ignore[no-untyped-def]
    for hour in hours:
        write_landing(platform.settings.landing_dir, hour, "part-0", hour_events(hour))
    platform.run_hours(*[f"{hour:%Y-%m-%d-%H:00}" for hour in hours])


def tick_reporting(platform, cursor: str | None):  # type: ignore[no-untyped-def]
    """One evaluation: its cursor, what it said, and the asset events it reported."""
    with build_sensor_context(instance=platform.instance, cursor=cursor,
                              resources=RESOURCES) as context:
        result = service_mood_sensor(context)
        if isinstance(result, SkipReason):
            return context.cursor, result.skip_message, []
        return context.cursor, result.skip_reason.skip_message, list(result.asset_events)


def tick(platform, cursor: str | None) -> tuple[str | None, str]:  # type: ignore[no-untyped-def]
    cursor, said, _ = tick_reporting(platform, cursor)
    return cursor, said


def write_routes(path: Path, receiver: Receiver) -> Path:
    path.write_text(f"""\
dashboard_url: http://dashboard.example
routes:
  - name: oncall                 # every scenario's mood of all traffic
    match: {{severity: page}}
    sinks:
      - {{type: webhook, url: "{receiver.url}/oncall", secret_env: ROUTE_TEST_SECRET}}
      - {{type: pagerduty, routing_key_env: ROUTE_TEST_PD_KEY, url: "{receiver.url}/v2/enqueue"}}
  - name: fabrikam-own           # fabrikam's own mood only
    match: {{partner: fabrikam}}
    sinks:
      - {{type: slack, url_env: ROUTE_TEST_SLACK_URL}}
  - name: contoso-own
    match: {{partner: contoso, scenario: "checkout.*"}}
    sinks:
      - {{type: webhook, url: "{receiver.url}/contoso"}}
""")
    return path


def test_changes_reach_their_routes_grouped_scoped_silenced_and_once(
        platform, receiver, monkeypatch, tmp_path):
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "50")
    # Page rules only, over an hour's budget: the scenarios are healthy again soon after the
    # outage rather than degraded for the days it takes to earn the budget back.
    monkeypatch.setenv("TELEMETRY_MOOD_RULES", "page:14.4:1h:5m,page:6:6h:30m")
    monkeypatch.setenv("TELEMETRY_MOOD_BUDGET_WINDOW", "1h")
    monkeypatch.setenv("ROUTE_TEST_SECRET", SECRET)
    monkeypatch.setenv("ROUTE_TEST_PD_KEY", "R0UT1NGKEY")
    monkeypatch.setenv("ROUTE_TEST_SLACK_URL", f"{receiver.url}/slack")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(write_routes(tmp_path / "routes.yaml", receiver)))
    scenarios = platform.settings.reference_dir / "scenarios.csv"
    lines = scenarios.read_text().splitlines()
    scenarios.write_text("\n".join([lines[0] + ",runbook_url"] + [
        line + (",https://runbooks.example/quote" if line.startswith("checkout.quote") else ",")
        for line in lines[1:]]) + "\n")
    # fabrikam (silver) is promised 99 % of its quotes, not the scenario's 99.5 %.
    (platform.settings.reference_dir / "slos.yaml").write_text(
        "objectives:\n  - {scenario: checkout.quote, kind: availability, tiers: {silver: 99}}\n")
    platform.run_reference()
    land_and_run(platform, *[HISTORY_START + timedelta(hours=h) for h in range(20)])
    cursor, said = tick(platform, None)
    assert "no change of state" in said and receiver.posts == []

    # Search is silenced from the outage until 40 minutes after it.
    silence = build_silence({"scenario": "search.*"}, starts_at=OUTAGE,
                            ends_at=RECOVERY + timedelta(minutes=40), reason="index rebuild",
                            created_by="sre")
    SilenceStore(platform.settings.lake_dir).add([silence])

    land_and_run(platform, OUTAGE)
    cursor, said, events = tick_reporting(platform, cursor)
    # The UI shows what each evaluation sent, and the routes it followed.
    (report,) = [e for e in events if e.asset_key == ROUTED_DELIVERIES]
    shown = {key: value.value for key, value in report.metadata.items()}
    assert (shown["delivered"], shown["failed"], shown["silenced"]) == (3, 0, 2)
    assert markdown.cell("fabrikam-own: partner-scoped, partner fabrikam -> slack "
                         "$ROUTE_TEST_SLACK_URL") in shown["routes"]
    assert "R0UT1NGKEY" not in str(shown) and SECRET not in str(shown)
    changes = {(r["scenario_id"], r["partner_id"], r["state"]) for r in
               read_notifications(platform.lake)}
    # All traffic: both scenarios page; fabrikam's own quotes page; contoso's own quotes never
    # change (its searches do, which its route does not take).
    assert {("checkout.quote", None, "breaching"), ("search.query", None, "breaching"),
            ("checkout.quote", "fabrikam", "breaching")} <= changes
    assert ("checkout.quote", "contoso", "breaching") not in changes

    # One grouped message per route and sink for the evaluation, not one post per change.
    oncall = receiver.bodies("/oncall")
    assert len(oncall) == 1
    assert [c["scenario_id"] for c in oncall[0]["changes"]] == ["checkout.quote"]
    # The silenced search page is recorded, not sent.
    deliveries = read_deliveries(platform.lake)
    silenced = [d for d in deliveries if d["status"] == "silenced"]
    assert {(d["subject"], d["route"], d["silence_id"]) for d in silenced} == {
        ("search.query", "oncall", silence.silence_id)}
    assert len(silenced) == 2  # the webhook and PagerDuty sinks of the route

    # The webhook is signed over its timestamp and body, under a delivery id.
    _, headers, body = next(p for p in receiver.posts if p[0] == "/oncall")
    expected = hmac.new(SECRET.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[DELIVERY_HEADER] == oncall[0]["delivery_id"]

    # fabrikam's route has its own mood: judged over its own 15 quotes a minute.
    (slack,) = receiver.bodies("/slack")
    jsonschema.validate(slack, json.loads((SCHEMAS / "slack-incoming-webhook.json").read_text()))
    assert "checkout.quote for fabrikam is breaching" in slack["blocks"][0]["text"]["text"]
    assert "For partner fabrikam" in slack["text"]
    recorded = {(r["scenario_id"], r["partner_id"]): json.loads(r["payload"])["details"]
                for r in read_notifications(platform.lake) if r["state"] == "breaching"}
    assert recorded["checkout.quote", "fabrikam"]["slo_target_pct"] == 99.0
    assert recorded["checkout.quote", None]["slo_target_pct"] == 99.5
    assert receiver.bodies("/contoso") == []

    (trigger,) = receiver.bodies("/v2/enqueue")
    pagerduty = json.loads((SCHEMAS / "pagerduty-events-v2.json").read_text())
    jsonschema.validate(trigger, pagerduty, format_checker=jsonschema.FormatChecker())
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "critical"
    assert trigger["routing_key"] == "R0UT1NGKEY"
    assert trigger["links"] == [
        {"href": "https://runbooks.example/quote", "text": "Runbook"},
        {"href": "http://dashboard.example/?day=2026-11-20&scenario=checkout.quote",
         "text": "Dashboard"}]

    # Nothing new: nothing sent again, on the next tick or after losing the cursor.
    before = len(receiver.posts)
    tick(platform, cursor)
    tick(platform, None)
    assert len(receiver.posts) == before

    land_and_run(platform, RECOVERY)
    cursor, said = tick(platform, cursor)
    recoveries = receiver.bodies("/oncall")[1:]
    assert len(recoveries) == 1
    # The search recovery comes after the silence ended: delivered, once.
    assert sorted((c["scenario_id"], c["state"]) for c in recoveries[0]["changes"]) == [
        ("checkout.quote", "healthy"), ("search.query", "healthy")]
    resolves = receiver.bodies("/v2/enqueue")[1:]
    for event in resolves:
        jsonschema.validate(event, pagerduty)
    # The resolve of the page closes the incident its trigger opened.
    assert trigger["dedup_key"] in {e["dedup_key"] for e in resolves}
    assert {e["event_action"] for e in resolves} == {"resolve"}
    assert [b["blocks"][0]["text"]["text"] for b in receiver.bodies("/slack")[1:]] == [
        "[fabrikam-own] checkout.quote for fabrikam is healthy"]
    # The older changes of a group are superseded by the newest of their scenario.
    statuses = {(d["subject"], d["state"], d["status"]) for d in read_deliveries(platform.lake)
                if d["route"] == "oncall" and d["sink_type"] == "webhook"}
    assert ("checkout.quote", "degraded", "superseded") in statuses
    sent = [d for d in read_deliveries(platform.lake) if d["status"] == "delivered"]
    assert len({(d["notification_id"], d["sink_key"]) for d in sent}) == len(sent)


def test_a_refused_delivery_is_retried_after_a_backoff_and_given_up_after_the_limit(
        platform, monkeypatch, tmp_path):
    failing = Receiver(answers=[503] * 3 + [429] * 3 + [503] * 20)
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "50")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"routes:\n  - name: all\n    sinks:\n"
                      f"      - {{type: webhook, url: \"{failing.url}/hook\"}}\n")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(routes))
    platform.run_reference()
    land_and_run(platform, *[HISTORY_START + timedelta(hours=h) for h in range(20)], OUTAGE)
    from telemetry_assets.automation import service_mood

    clock = [datetime(2026, 11, 20, 11, 5, tzinfo=UTC)]
    monkeypatch.setattr(service_mood, "utc_now", lambda: clock[0])
    cursor, _ = tick(platform, json.dumps({"as_of": "2026-11-20T10:00:00"}))
    (row,) = {(d["delivery_id"], d["status"], d["attempts"]) for d in
              read_deliveries(platform.lake)}
    assert row[1:] == ("failed", 1)  # a 503: tried again after a backoff
    # Not due yet: nothing is sent.
    posts = len(failing.posts)
    tick(platform, cursor)
    assert len(failing.posts) == posts
    for _ in range(6):
        clock[0] += timedelta(minutes=11)
        tick(platform, cursor)
    statuses = {(d["status"], d["attempts"]) for d in read_deliveries(platform.lake)}
    assert statuses == {("gave_up", 5)}
    failing.close()


def test_the_sensor_refuses_a_bad_routes_file_rather_than_dropping_its_changes(
        platform, monkeypatch, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: all\n    sinks:\n"
                      "      - {type: slack, url_env: UNSET_X}\n")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(routes))
    platform.run_reference()
    with pytest.raises(RoutesFileError, match=r"routes.yaml:4: the environment variable UNSET_X"):
        tick(platform, None)
    assert read_notifications(platform.lake) == []
