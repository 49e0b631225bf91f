"""The servers the notification sinks' tests drive: each accepts what a sink will send it."""

import smtplib
from email.message import EmailMessage

from tests.telemetry_notify.servers import Alertmanager, Prosody, SmtpServer, XmppClient, wait_until

LABELS = {"alertname": "ServiceMood", "service": "checkout", "scenario": "checkout.purchase_quote",
          "partner": "contoso", "severity": "page"}  # fmt: skip


def test_alertmanager_groups_a_posted_alert_and_delivers_it_to_the_webhook(
    alertmanager: Alertmanager,
):
    status = alertmanager.post_alerts(
        [{"labels": LABELS, "annotations": {"summary": "burning 14.4x"}}]
    )

    assert status == 200
    alerts = wait_until(alertmanager.alerts, what="the alert is listed")
    assert [alert["labels"] for alert in alerts] == [LABELS]
    assert alertmanager.alerts(active=False) == []
    groups = wait_until(alertmanager.groups, what="a group")
    assert [group["labels"] for group in groups] == [
        {key: LABELS[key] for key in ("alertname", "service", "scenario", "partner")}
    ]
    assert groups[0]["receiver"]["name"] == "fixture"
    posts = wait_until(alertmanager.webhook_posts, timeout=15, what="a webhook delivery")
    assert posts[0]["status"] == "firing"
    assert [alert["labels"] for alert in posts[0]["alerts"]] == [LABELS]
    assert posts[0]["groupLabels"]["scenario"] == "checkout.purchase_quote"


def test_smtp_server_receives_a_message(smtp_server: SmtpServer):
    message = EmailMessage()
    message["From"], message["To"] = "mood@example.org", "sre@example.org"
    message["Subject"] = "checkout.purchase_quote is breaching"
    message.set_content("burning 14.4x")

    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(message)

    [received] = smtp_server.messages
    assert received.mail_from == "mood@example.org"
    assert received.rcpt_tos == ["sre@example.org"]
    assert received.message["Subject"] == "checkout.purchase_quote is breaching"
    assert received.message.get_content().strip() == "burning 14.4x"


def test_two_prosody_accounts_log_in_and_see_each_other(prosody: Prosody):
    mood = prosody.create_account("mood", "mood-secret")
    sre = prosody.create_account("sre", "sre-secret")
    first = XmppClient(prosody, mood, "mood-secret").start()
    second = XmppClient(prosody, sre, "sre-secret").start()
    try:
        second.subscribe(mood)
        seen = wait_until(lambda: [p for p in second.presences(of=mood) if p.type == "available"],
                          what="mood's presence after subscribing")  # fmt: skip
        assert seen[0].resource == "test"
    finally:
        first.stop()
        second.stop()
