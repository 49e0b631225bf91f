"""Routed notifications: each change to the routes that match it, one message per route and sink
per evaluation, at most once.

Every (change, route, sink) is recorded in `alerts.route_deliveries` before anything is sent:
`queued`, or `silenced` when a silence covers it. At the end of an evaluation the queued rows
(and the failed ones whose next attempt is due) are grouped per route and sink into one
message (a digest when several scenarios changed together; PagerDuty takes one event per change,
each its own delivery), marked `sending` under a delivery id, then sent: `delivered`, or
`failed` with the next attempt after a backoff when the answer was 408, 429, 5xx or none, and
`gave_up` after MAX_ATTEMPTS or on any other refusal. A row left `sending` by a crash is never
sent again (it may have arrived); an older change still to send whose scenario has a newer one
on the same sink is `superseded`: the newer one says what holds now.

Alertmanager forgets an alert it has not heard of for its resolve timeout, so the alerts still
firing are sent to it again on each evaluation (unrecorded: it deduplicates them itself).
"""

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from telemetry_assets.lake import Lake
from telemetry_assets.tables import CUSTOMERS, ROUTE_DELIVERIES, SCENARIOS
from telemetry_core.routes import Change, Route, RoutesConfig, Sink, load_routes
from telemetry_core.silences import Silence
from telemetry_core.sql import compute_connection
from telemetry_notify import formats
from telemetry_notify.formats import Notice
from telemetry_notify.send import Delivery, post_json, post_signed, send_email

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=10)
# Sinks that carry messages; an XMPP sink shows the current state instead (telemetry presence).
MESSAGE_SINKS = ("slack", "pagerduty", "alertmanager", "webhook", "email")
WAITING = ("queued", "failed")

SCHEMA = pa.schema([
    ("notification_id", pa.string()),
    ("subject", pa.string()),
    ("partner_id", pa.string()),
    ("route", pa.string()),
    # Which sink of the route (its line in the routes file), and how it is shown.
    ("sink_key", pa.string()),
    ("sink", pa.string()),
    ("sink_type", pa.string()),
    ("state", pa.string()),
    ("as_of", pa.timestamp("us")),
    ("notice", pa.string()),
    # queued, silenced, sending, delivered, failed, gave_up or superseded.
    ("status", pa.string()),
    ("delivery_id", pa.string()),
    ("attempts", pa.int32()),
    ("http_status", pa.int32()),
    ("error", pa.string()),
    ("silence_id", pa.string()),
    ("next_attempt_at", pa.timestamp("us")),
    ("recorded_at", pa.timestamp("us")),
])


def load_configured_routes(lake: Lake, path: Path | None,
                           environ: Mapping[str, str] | None = None) -> RoutesConfig:
    """The routes file checked against the reference data in the lake (every scenario, service,
    partner and tier it names must exist); raises RoutesFileError naming every bad line."""
    scenarios: dict[str, str | None] | None = None
    partners: dict[str, str | None] | None = None
    with closing(compute_connection()) as con:
        if lake.register(con, SCENARIOS, existing_only=True):
            scenarios = dict(con.execute(
                f"select scenario_id, service from {SCENARIOS.name}").fetchall())
        if lake.register(con, CUSTOMERS, existing_only=True):
            partners = dict(con.execute(
                f"select partner_id, tier from {CUSTOMERS.name}").fetchall())
    return load_routes(path, scenarios, partners, environ)


def scope_of(row: Mapping[str, Any]) -> str:
    """A delivery's mood as people name it: `scenario`, or `scenario@partner`."""
    return row["subject"] + (f"@{row['partner_id']}" if row["partner_id"] else "")


def sink_key(route: Route, sink: Sink) -> str:
    return f"{route.name}#{sink.line}"


def change_of(notice: Notice, tiers: Mapping[str, str | None]) -> Change:
    return Change(scenario_id=notice.subject, service=notice.service, state=notice.state,
                  previous_state=notice.previous_state, partner_id=notice.partner_id,
                  tier=tiers.get(notice.partner_id) if notice.partner_id else None)


def _notice_json(notice: Notice) -> str:
    return json.dumps(asdict(notice), default=lambda v: v.isoformat())


def _notice_from(text: str) -> Notice:
    values = json.loads(text)
    for key in ("as_of", "episode_started"):
        values[key] = datetime.fromisoformat(values[key])
    return Notice(**values)


def read_deliveries(lake: Lake) -> list[dict[str, Any]]:
    with closing(compute_connection()) as con:
        if not lake.register(con, ROUTE_DELIVERIES, existing_only=True):
            return []
        relation = con.table(ROUTE_DELIVERIES.name).order("recorded_at, as_of, route, sink_key")
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _save(lake: Lake, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with closing(compute_connection()) as con:
        lake.write(ROUTE_DELIVERIES, None, con.from_arrow(table))
    lake.publish_views([ROUTE_DELIVERIES])


def record(lake: Lake, config: RoutesConfig, notices: Sequence[Notice],
           silences: Sequence[Silence], now: datetime) -> list[dict[str, Any]]:
    """Record a row per change, matching route and message sink (none twice); returns the new."""
    rows = read_deliveries(lake)
    known = {(row["notification_id"], row["sink_key"]) for row in rows}
    # The state each route last took each mood in: not healthy means its episode is open there.
    last_taken: dict[tuple[str, str, str | None], str] = {}
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        last_taken[row["route"], row["subject"], row["partner_id"]] = row["state"]
    recorded_at = now.astimezone(UTC).replace(tzinfo=None)
    new = []
    for notice in sorted(notices, key=lambda n: n.as_of):
        change = change_of(notice, config.partners)
        muting = next((s for s in silences if s.matches(change, notice.as_of)), None)
        open_on = {route for (route, subject, partner), state in last_taken.items()
                   if subject == notice.subject and partner == notice.partner_id
                   and state != "healthy"}
        for route in config.routes_for(change, open_on):
            last_taken[route.name, notice.subject, notice.partner_id] = notice.state
            for sink in route.sinks:
                key = sink_key(route, sink)
                if sink.type not in MESSAGE_SINKS or (notice.notification_id, key) in known:
                    continue
                known.add((notice.notification_id, key))
                new.append({
                    "notification_id": notice.notification_id, "subject": notice.subject,
                    "partner_id": notice.partner_id, "route": route.name, "sink_key": key,
                    "sink": sink.label, "sink_type": sink.type, "state": notice.state,
                    "as_of": notice.as_of, "notice": _notice_json(notice),
                    "status": "silenced" if muting else "queued", "delivery_id": None,
                    "attempts": 0, "http_status": None, "error": None,
                    "silence_id": muting.silence_id if muting else None,
                    "next_attempt_at": None, "recorded_at": recorded_at,
                })
    if new:
        _save(lake, rows + new)
    return new


@dataclass
class Flushed:
    """What one flush sent: a row per message (route, sink, changes, status, error)."""

    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


def _retry_at(attempts: int, now: datetime) -> datetime:
    return now + min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)


def _delivery_id(key: str, rows: Sequence[dict[str, Any]]) -> str:
    ids = "|".join(sorted(row["notification_id"] for row in rows))
    return "delivery-" + hashlib.sha256(f"{key}|{ids}".encode()).hexdigest()[:24]


def flush(lake: Lake, config: RoutesConfig, now: datetime,
          environ: Mapping[str, str] | None = None) -> Flushed:
    """Send every queued row and every failed one that is due, grouped per route and sink."""
    rows = read_deliveries(lake)
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    sinks = {sink_key(route, sink): (route, sink) for route in config.routes
             for sink in route.sinks}
    outcome = Flushed()
    latest: dict[tuple[str, str | None, str], datetime] = {}
    for row in rows:
        if row["status"] not in ("silenced", "superseded"):
            slot = (row["subject"], row["partner_id"], row["sink_key"])
            latest[slot] = max(latest.get(slot, row["as_of"]), row["as_of"])
    due: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] not in WAITING or (
                row["status"] == "failed" and row["next_attempt_at"] is not None
                and row["next_attempt_at"] > now_naive):
            continue
        if row["sink_key"] not in sinks:
            row.update(status="gave_up", error="the route or sink is no longer in the routes file")
            outcome.gave_up += 1
            continue
        if row["as_of"] < latest[row["subject"], row["partner_id"], row["sink_key"]]:
            row.update(status="superseded", error="a newer change of the scenario came first")
            continue
        due.setdefault(row["sink_key"], []).append(row)
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for key, batch in due.items():
        batch.sort(key=lambda r: (r["as_of"], r["subject"]))
        if sinks[key][1].type == "pagerduty":
            groups += [(key, [row]) for row in batch]
        else:
            groups.append((key, batch))
    if not groups and not outcome.gave_up:
        return outcome
    for key, batch in groups:
        delivery_id = _delivery_id(key, batch)
        for row in batch:
            row.update(status="sending", delivery_id=delivery_id, attempts=row["attempts"] + 1)
    # Recorded before the first byte leaves: a crash from here on never sends these again.
    _save(lake, rows)
    for key, batch in groups:
        route, sink = sinks[key]
        notices = [_notice_from(row["notice"]) for row in batch]
        sent = send(route, sink, notices, batch[0]["delivery_id"], now, environ)
        for row in batch:
            row.update(http_status=sent.status, error=sent.error)
            if sent.ok:
                row["status"] = "delivered"
            elif sent.retryable and row["attempts"] < MAX_ATTEMPTS:
                row.update(status="failed", next_attempt_at=_retry_at(row["attempts"], now_naive))
            else:
                row["status"] = "gave_up"
        outcome.messages.append({
            "route": route.name, "sink": sink.label, "delivery": batch[0]["delivery_id"],
            "changes": ", ".join(f"{scope_of(row)} {row['state']}" for row in batch),
            "status": batch[0]["status"], "http": sent.status or "", "error": sent.error or ""})
        if sent.ok:
            outcome.delivered += 1
        else:
            outcome.failed += 1
            log.warning("route %s, %s: delivery %s failed: %s", route.name, sink.label,
                        batch[0]["delivery_id"], sent.error)
    _save(lake, rows)
    return outcome


def send(route: Route, sink: Sink, notices: Sequence[Notice], delivery_id: str, now: datetime,
         environ: Mapping[str, str] | None = None) -> Delivery:
    """One message of the group in the sink's format, over its transport."""
    settings = sink.settings
    missing = [name for name in sink.secret_vars if not sink.secret(name, environ)]
    if missing:
        return Delivery(sink.label, 400, "the environment variable "
                        f"{sink.secret_vars[missing[0]]} is not set")
    if sink.type == "slack":
        return post_json(sink.secret("url", environ) or "",
                         formats.slack_message(route.name, notices))
    if sink.type == "pagerduty":
        return post_json(settings["url"], formats.pagerduty_event(
            notices[0], sink.secret("routing_key", environ) or "", route.name))
    if sink.type == "alertmanager":
        return post_json(settings["url"].rstrip("/") + "/api/v2/alerts",
                         formats.alertmanager_alerts(notices, now))
    if sink.type == "webhook":
        return post_signed(settings["url"],
                           formats.webhook_body(route.name, delivery_id, notices),
                           delivery_id, sink.secret("secret", environ))
    message = formats.email_message(route.name, delivery_id, notices, settings["from"],
                                    settings["to"])
    return send_email(message, settings["host"], settings["port"], settings["starttls"],
                      sink.secret("username", environ), sink.secret("password", environ))


def firing(rows: Sequence[dict[str, Any]]) -> dict[str, list[Notice]]:
    """Per Alertmanager sink key, the latest sent change of each scenario still not healthy."""
    latest: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        if row["sink_type"] == "alertmanager" and row["status"] in ("delivered", "sending"):
            latest[row["sink_key"], row["subject"], row["partner_id"]] = row
    found: dict[str, list[Notice]] = {}
    for (key, _, _), row in latest.items():
        if row["state"] != "healthy":
            found.setdefault(key, []).append(_notice_from(row["notice"]))
    return found


def refresh_alertmanager(lake: Lake, config: RoutesConfig, now: datetime) -> int:
    """Send the still-firing alerts again, so Alertmanager does not resolve them on its own."""
    sinks = {sink_key(route, sink): sink for route in config.routes for sink in route.sinks
             if sink.type == "alertmanager"}
    if not sinks:
        return 0
    refreshed = 0
    for key, notices in firing(read_deliveries(lake)).items():
        if key in sinks:
            url = sinks[key].settings["url"].rstrip("/") + "/api/v2/alerts"
            refreshed += post_json(url, [formats.firing_alert(n, now) for n in notices],
                                   attempts=1).ok
    return refreshed
