"""What each sink receives for a group of changes, in the sink's own documented format.

- Slack incoming webhook: one message, `text` (the notification's fallback) and Block Kit
  `blocks` (a header, a section per change with its links, a context line), within Slack's
  limits (https://api.slack.com/reference/block-kit/blocks).
- PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
  one event per change, `trigger` while the scenario is degraded or breaching and `resolve` when
  it is healthy again, under one `dedup_key` per episode (from leaving healthy to returning), so
  the resolve closes the incident the trigger opened.
- Prometheus Alertmanager `POST /api/v2/alerts`: one alert per scenario, labels `alertname`,
  `severity`, `service`, `scenario`, `partner`; annotations `summary`, `runbook_url`,
  `dashboard_url`; `endsAt` set on recovery. A change of severity ends the alert of the other
  severity (its labels differ) and starts the new one.
- A generic JSON webhook: every change with its figures, under a delivery id; signed by the
  transport (telemetry_notify/send.py).
- Email: a plain-text digest.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

ICONS = {"healthy": ":large_green_circle:", "degraded": ":large_yellow_circle:",
         "breaching": ":red_circle:"}
PAGERDUTY_SEVERITY = {"breaching": "critical", "degraded": "warning", "healthy": "info"}
ALERT_SEVERITY = {"breaching": "page", "degraded": "ticket"}
ALERTNAME = "ServiceMood"
# Slack's limits: 50 blocks a message, 150 characters in a header, 3000 in a section's text.
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_CHARS = 150
SLACK_SECTION_CHARS = 3000
# Alertmanager resolves an alert it has not heard of for its resolve_timeout (5 m by default):
# a firing alert is sent with an end this far ahead, and sent again while it fires.
ALERT_HOLD = timedelta(minutes=10)


@dataclass(frozen=True)
class Notice:
    """One change of one mood, with everything a message about it shows."""

    notification_id: str
    subject: str  # the scenario id, or `scenario/objective` for a latency objective
    scenario_id: str
    scenario_name: str
    service: str | None
    partner_id: str | None  # None: the mood of all traffic
    previous_state: str
    state: str
    as_of: datetime
    # When the episode this change belongs to began (its first change away from healthy).
    episode_started: datetime
    text: str  # one line for people, plain
    provisional: bool = False
    runbook_url: str | None = None
    dashboard_url: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return f"{self.subject} for {self.partner_id}" if self.partner_id else self.subject

    @property
    def episode_key(self) -> str:
        """Stable for the episode: the trigger and the resolve of one incident share it."""
        started = f"{self.episode_started:%Y-%m-%dT%H:%M}"
        return f"{self.subject}|{self.partner_id or '*'}|{started}"


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def slack_escaped(value: str) -> str:
    """A value to put into a message's `text` that Slack shows as it is, never as a mention,
    a link or an entity: Slack's own escaping of &, < and >
    (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(route: str, notices: Sequence[Notice]) -> str:
    """The one-line summary of a group: what changed, worst first."""
    worst = max(notices, key=lambda n: ("healthy", "degraded", "breaching").index(n.state))
    rest = len(notices) - 1
    more = f" and {rest} more change{'s' * (rest > 1)}" if rest else ""
    return f"[{route}] {worst.scope} is {worst.state}{more}"


def slack_message(route: str, notices: Sequence[Notice]) -> dict[str, Any]:
    """One Slack message for the group, within Block Kit's limits."""
    title = headline(route, notices)
    blocks: list[dict[str, Any]] = [{
        "type": "header",
        "text": {"type": "plain_text", "text": title[:SLACK_HEADER_CHARS], "emoji": True},
    }]
    shown = notices[:SLACK_MAX_BLOCKS - 3]
    for notice in shown:
        links = [f"<{url}|{label}>" for label, url in (("runbook", notice.runbook_url),
                                                        ("dashboard", notice.dashboard_url))
                 if url]
        body = (f"{ICONS[notice.state]} *{slack_escaped(notice.scope)}*: {notice.previous_state} → "
                f"{notice.state}\n{slack_escaped(notice.text)}")
        if links:
            body += "\n" + " · ".join(links)
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": body[:SLACK_SECTION_CHARS]}})
    if len(notices) > len(shown):
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn",
            "text": f"…and {len(notices) - len(shown)} more: "
                    + slack_escaped(", ".join(n.scope for n in notices[len(shown):]))[:2800]}})
    latest = max(n.as_of for n in notices)
    provisional = " · provisional" if any(n.provisional for n in notices) else ""
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": f"route {slack_escaped(route)} · as of {latest:%Y-%m-%d %H:%M} UTC{provisional}",
    }]})
    fallback = "\n".join(f"{ICONS[n.state]} {slack_escaped(n.text)}" for n in notices)
    return {"text": f"{slack_escaped(title)}\n{fallback}", "blocks": blocks}


def pagerduty_event(notice: Notice, routing_key: str, route: str) -> dict[str, Any]:
    """One Events API v2 event: trigger (or update) the episode's incident, or resolve it."""
    dedup_key = hashlib.sha256(f"{route}|{notice.episode_key}".encode()).hexdigest()[:32]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if notice.state == "healthy" else "trigger",
        "dedup_key": f"telemetry-{dedup_key}",
    }
    if notice.state == "healthy":
        return event
    event["payload"] = {
        "summary": notice.text[:1024],
        "source": notice.service or notice.scenario_id,
        "severity": PAGERDUTY_SEVERITY[notice.state],
        "timestamp": _iso(notice.as_of),
        "component": notice.scenario_id,
        "group": notice.service or notice.scenario_id,
        "class": f"service mood {notice.state}",
        "custom_details": {"partner": notice.partner_id or "all", **notice.details},
    }
    event["links"] = [{"href": url, "text": label} for label, url in (
        ("Runbook", notice.runbook_url), ("Dashboard", notice.dashboard_url)) if url]
    event["client"] = "telemetry availability platform"
    if notice.dashboard_url:
        event["client_url"] = notice.dashboard_url
    return event


def alert_labels(notice: Notice, state: str) -> dict[str, str]:
    return {"alertname": ALERTNAME, "severity": ALERT_SEVERITY[state],
            "service": notice.service or "unknown", "scenario": notice.subject,
            "partner": notice.partner_id or "all"}


def alertmanager_alerts(notices: Sequence[Notice], now: datetime) -> list[dict[str, Any]]:
    """The alerts to post for the group: each change ends the alert of the state it leaves and
    starts (or keeps) the one of the state it enters."""
    alerts: list[dict[str, Any]] = []
    for notice in notices:
        annotations = {"summary": notice.text}
        annotations |= {"runbook_url": notice.runbook_url} if notice.runbook_url else {}
        annotations |= {"dashboard_url": notice.dashboard_url} if notice.dashboard_url else {}
        # Every other severity's alert ends, not only the previous state's: a group carries
        # only each scenario's latest change, so the one in between may never have been sent.
        for state in ALERT_SEVERITY:
            if state != notice.state:
                alerts.append({"labels": alert_labels(notice, state),
                               "annotations": annotations,
                               "startsAt": _iso(notice.episode_started),
                               "endsAt": _iso(notice.as_of)})
        if notice.state in ALERT_SEVERITY:
            alerts.append(firing_alert(notice, now))
    return alerts


def firing_alert(notice: Notice, now: datetime) -> dict[str, Any]:
    """The alert of a scenario in a degraded or breaching state, held for ALERT_HOLD."""
    annotations = {"summary": notice.text}
    annotations |= {"runbook_url": notice.runbook_url} if notice.runbook_url else {}
    annotations |= {"dashboard_url": notice.dashboard_url} if notice.dashboard_url else {}
    alert = {"labels": alert_labels(notice, notice.state), "annotations": annotations,
             "startsAt": _iso(notice.as_of), "endsAt": _iso(now + ALERT_HOLD)}
    if notice.dashboard_url:
        alert["generatorURL"] = notice.dashboard_url
    return alert


def webhook_body(route: str, delivery_id: str, notices: Sequence[Notice]) -> dict[str, Any]:
    return {
        "event": "service_mood_changed",
        "delivery_id": delivery_id,
        "route": route,
        "summary": headline(route, notices),
        "changes": [{
            "notification_id": n.notification_id, "scenario_id": n.subject,
            "scenario_name": n.scenario_name, "service": n.service,
            "partner_id": n.partner_id, "previous_state": n.previous_state, "state": n.state,
            "as_of": _iso(n.as_of), "provisional": n.provisional, "text": n.text,
            "runbook_url": n.runbook_url, "dashboard_url": n.dashboard_url,
            "details": dict(n.details),
        } for n in notices],
    }


def email_message(route: str, delivery_id: str, notices: Sequence[Notice], sender: str,
                  recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = headline(route, notices)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(idstring=delivery_id[:16], domain="telemetry.local")
    message["X-Telemetry-Delivery"] = delivery_id
    lines = []
    for notice in notices:
        lines.append(f"{notice.scope}: {notice.previous_state} -> {notice.state}")
        lines.append(f"  {notice.text}")
        for label, url in (("runbook", notice.runbook_url), ("dashboard", notice.dashboard_url)):
            if url:
                lines.append(f"  {label}: {url}")
        lines.append("")
    lines.append(f"Route {route}, delivery {delivery_id}.")
    message.set_content("\n".join(lines))
    return message
