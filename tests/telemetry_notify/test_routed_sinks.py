"""The routed mood changes through real servers on loopback: Debian's Prometheus Alertmanager
(grouping the alerts under their labels, then resolving them) and an SMTP server.

The data and the sensor are those of tests/telemetry_assets/mood/test_routes.py: an outage hour
in which a third of fabrikam's quotes and half the searches fail, then a clean hour.
"""

from datetime import timedelta

from telemetry_assets.mood.routing import read_deliveries
from tests.telemetry_assets.mood.test_routes import (
    HISTORY_START,
    OUTAGE,
    RECOVERY,
    land_and_run,
    tick,
)
from tests.telemetry_notify.servers import wait_until


def test_alertmanager_groups_the_firing_alerts_then_resolves_them_and_email_gets_a_digest(
        platform, alertmanager, smtp_server, monkeypatch, tmp_path):
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "50")
    monkeypatch.setenv("TELEMETRY_MOOD_RULES", "page:14.4:1h:5m,page:6:6h:30m")
    monkeypatch.setenv("TELEMETRY_MOOD_BUDGET_WINDOW", "1h")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
dashboard_url: http://dashboard.example
routes:
  - name: oncall
    match: {{severity: page}}
    sinks:
      - {{type: alertmanager, url: "{alertmanager.url}"}}
      - {{type: email, host: 127.0.0.1, port: {smtp_server.port}, from: mood@example.com,
         to: [sre@example.com, lead@example.com]}}
""")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(routes))
    platform.run_reference()
    land_and_run(platform, *[HISTORY_START + timedelta(hours=h) for h in range(20)], OUTAGE)
    cursor, _ = tick(platform, None)
    cursor, _ = tick(platform, cursor)  # the first tick judged the history, this one the outage

    active = wait_until(lambda: [a for a in alertmanager.alerts(active=True)
                                 if a["status"]["state"] == "active"] or None,
                        what="active alerts")
    labels = sorted((a["labels"]["scenario"], a["labels"]["severity"], a["labels"]["service"],
                     a["labels"]["partner"]) for a in active)
    assert labels == [("checkout.quote", "page", "checkout", "all"),
                      ("search.query", "page", "search", "all")]
    assert {a["annotations"]["dashboard_url"] for a in active} == {
        "http://dashboard.example/?day=2026-11-20&scenario=checkout.quote",
        "http://dashboard.example/?day=2026-11-20&scenario=search.query"}
    assert all(a["annotations"]["summary"].startswith(a["labels"]["scenario"]) for a in active)
    # Alertmanager's own grouping: one group per scenario under the route's group_by labels.
    groups = alertmanager.groups()
    assert sorted(g["labels"]["scenario"] for g in groups) == ["checkout.quote", "search.query"]
    assert all(g["labels"]["alertname"] == "ServiceMood" for g in groups)
    # Each scenario is its own group there, so each is its own post, in either order.
    def posted(status: str) -> set[str] | None:
        scenarios = {a["labels"]["scenario"] for p in alertmanager.webhook_posts()
                     if p["status"] == status for a in p["alerts"]}
        return scenarios if scenarios == {"checkout.quote", "search.query"} else None

    wait_until(lambda: posted("firing"), what="a firing post per scenario")

    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ["sre@example.com", "lead@example.com"]
    assert mail.message["Subject"].startswith("[oncall] ")
    body = mail.message.get_content()
    assert "checkout.quote: degraded -> breaching" in body
    assert "search.query: degraded -> breaching" in body
    assert "dashboard: http://dashboard.example/?day=2026-11-20&scenario=checkout.quote" in body
    assert mail.message["X-Telemetry-Delivery"].startswith("delivery-")

    land_and_run(platform, RECOVERY)
    tick(platform, cursor)
    wait_until(lambda: posted("resolved"), what="a resolved post per scenario")
    assert not [a for a in alertmanager.alerts(active=True) if a["status"]["state"] == "active"]
    assert len(smtp_server.messages) == 2
    sent = [d for d in read_deliveries(platform.lake) if d["status"] == "delivered"]
    assert {d["sink_type"] for d in sent} == {"alertmanager", "email"}
