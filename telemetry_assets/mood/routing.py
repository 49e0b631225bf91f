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

import fcntl
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from telemetry_assets.lake import Lake
from telemetry_assets.tables import CUSTOMERS, ROUTE_DELIVERIES, SCENARIOS
from telemetry_core.durable import ensure_dir
from telemetry_core.routes import Change, Route, RoutesConfig, RoutesFileError, Sink, load_routes
from telemetry_core.silences import Silence
from telemetry_core.sql import compute_connection, utc_naive
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
    ("silenced_until", pa.timestamp("us")),
    ("next_attempt_at", pa.timestamp("us")),
    ("recorded_at", pa.timestamp("us")),
])


def load_configured_routes(lake: Lake, path: Path | None,
                           environ: Mapping[str, str] | None = None) -> RoutesConfig:
    """The routes file, with the partners of the lake's reference data for its partner-scoped
    routes; raises RoutesFileError naming every bad line. A name the reference data no longer
    has (a customer removed, a scenario renamed) is logged, not fatal: one stale glob must not
    stop every other notification. `telemetry routes check` holds the file to the reference."""
    scenarios: dict[str, str | None] | None = None
    partners: dict[str, str | None] = {}
    with closing(compute_connection()) as con:
        if lake.register(con, SCENARIOS, existing_only=True):
            scenarios = dict(con.execute(
                f"select scenario_id, service from {SCENARIOS.name}").fetchall())
        if lake.register(con, CUSTOMERS, existing_only=True):
            partners = dict(con.execute(
                f"select partner_id, tier from {CUSTOMERS.name}").fetchall())
    config = replace(load_routes(path, None, None, environ), partners=partners)
    if path is not None and scenarios is not None:
        try:
            load_routes(path, scenarios, partners, environ)
        except RoutesFileError as stale:
            for line in stale.errors:
                log.warning("routes file: %s", line)
    return config


def scope_of(row: Mapping[str, Any]) -> str:
    """A delivery's mood as people name it: `scenario`, or `scenario@partner`."""
    return row["subject"] + (f"@{row['partner_id']}" if row["partner_id"] else "")


def sink_key(route: Route, sink: Sink) -> str:
    """The sink's identity in the outbox: its route, type and settings (secrets by their
    variables), so a routes file edited around it keeps it, and a sink changed is a new one."""
    described = json.dumps([sink.type, sorted(sink.settings.items()),
                            sorted(sink.secret_vars.items())], default=str)
    return f"{route.name}#{hashlib.sha256(described.encode()).hexdigest()[:12]}"


def change_of(notice: Notice, tiers: Mapping[str, str | None]) -> Change:
    return Change(scenario_id=notice.subject, service=notice.service, state=notice.state,
                  previous_state=notice.previous_state, partner_id=notice.partner_id,
                  tier=tiers.get(notice.partner_id) if notice.partner_id else None)


def _notice_json(notice: Notice) -> str:
    return json.dumps(asdict(notice), default=lambda v: v.isoformat())


_NOTICE_FIELDS = {f.name for f in fields(Notice)}


def _notice_from(text: str) -> Notice:
    """A recorded notice; one of another version keeps the fields this one knows."""
    values = {key: value for key, value in json.loads(text).items() if key in _NOTICE_FIELDS}
    for key in ("as_of", "episode_started"):
        values[key] = datetime.fromisoformat(values[key])
    return Notice(**values)


def read_deliveries(lake: Lake) -> list[dict[str, Any]]:
    with closing(compute_connection()) as con:
        if not lake.register(con, ROUTE_DELIVERIES, existing_only=True):
            return []
        relation = con.table(ROUTE_DELIVERIES.name).order("recorded_at, as_of, route, sink_key")
        found = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    # A table written before a column existed reads without it.
    return [{name: row.get(name) for name in SCHEMA.names} for row in found]


def _save(lake: Lake, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with closing(compute_connection()) as con:
        lake.write(ROUTE_DELIVERIES, None, con.from_arrow(table))
    lake.publish_views([ROUTE_DELIVERIES])


@contextmanager
def _outbox_lock(lake: Lake) -> Iterator[None]:
    """One writer of the deliveries at a time: an evaluation that outlives its tick must not
    overwrite what the next one recorded."""
    folder = lake.table_dir(ROUTE_DELIVERIES).parent
    ensure_dir(folder)
    with open(folder / f".{ROUTE_DELIVERIES.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _slot(row: Mapping[str, Any]) -> tuple[str, str | None, str]:
    return row["subject"], row["partner_id"], row["sink_key"]


def _latest(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    """Per mood and sink, its latest recorded change (superseded ones aside)."""
    latest: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        if row["status"] != "superseded":
            latest[_slot(row)] = row
    return latest


def record(lake: Lake, config: RoutesConfig, notices: Sequence[Notice],
           silences: Sequence[Silence], now: datetime) -> list[dict[str, Any]]:
    """Record a row per change, matching route and message sink (none twice); returns the new."""
    with _outbox_lock(lake):
        rows = read_deliveries(lake)
        new = _new_rows(rows, config, notices, silences, now)
        if new:
            _save(lake, rows + new)
    return new


def _new_rows(rows: list[dict[str, Any]], config: RoutesConfig, notices: Sequence[Notice],
              silences: Sequence[Silence], now: datetime) -> list[dict[str, Any]]:
    known = {(row["notification_id"], row["sink_key"]) for row in rows}
    latest = _latest(rows)
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
                row = {
                    "notification_id": notice.notification_id, "subject": notice.subject,
                    "partner_id": notice.partner_id, "route": route.name, "sink_key": key,
                    "sink": sink.label, "sink_type": sink.type, "state": notice.state,
                    "as_of": notice.as_of, "notice": _notice_json(notice), "status": "queued",
                    "delivery_id": None, "attempts": 0, "http_status": None, "error": None,
                    "silence_id": None, "silenced_until": None, "next_attempt_at": None,
                    "recorded_at": recorded_at,
                }
                # A recovery is not silenced on a sink that heard of its episode: the page it
                # got is closed whatever was planned since.
                heard = latest.get(_slot(row))
                if muting is not None and not (
                        notice.state == "healthy" and heard is not None
                        and heard["status"] != "silenced" and heard["state"] != "healthy"):
                    row.update(status="silenced", silence_id=muting.silence_id,
                               silenced_until=muting.ends_at)
                latest[_slot(row)] = row
                new.append(row)
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


def _episode(row: Mapping[str, Any]) -> str | None:
    try:
        return _notice_from(row["notice"]).episode_key
    except (ValueError, TypeError, KeyError):
        return None


def _due(rows: list[dict[str, Any]], sinks: Mapping[str, tuple[Route, Sink]], now: datetime,
         judged_until: datetime | None, outcome: Flushed,
         ) -> list[tuple[str, list[dict[str, Any]]]]:
    """The groups to send now, each (sink key, rows); settles what will never be sent."""
    latest = _latest(rows)
    for row in rows:
        # A silence over before the instant the moods were judged at, while its mood still is
        # as it left it: said now, once. (Silences are in the data's time, as changes are.)
        if (judged_until is not None and row["status"] == "silenced"
                and row["silenced_until"] is not None and row["silenced_until"] <= judged_until
                and row["state"] != "healthy" and latest.get(_slot(row)) is row):
            row.update(status="queued", error=f"its silence {row['silence_id']} ended")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] not in WAITING or (
                row["status"] == "failed" and row["next_attempt_at"] is not None
                and row["next_attempt_at"] > now):
            continue
        found = sinks.get(row["sink_key"])
        if found is None or found[1].type != row["sink_type"]:
            row.update(status="gave_up", error="the route or sink is no longer in the routes file")
            outcome.gave_up += 1
            continue
        newest = latest[_slot(row)]
        # PagerDuty keeps one incident per episode: an older episode's resolve still closes it.
        if newest is not row and (row["sink_type"] != "pagerduty"
                                  or _episode(newest) == _episode(row)):
            row.update(status="superseded", error="a newer change of the scenario came first")
            continue
        if found[1].type == "pagerduty":
            groups[row["sink_key"], row["notification_id"]] = [row]
        else:
            # A retry keeps its delivery id: the receiver may have seen the first attempt.
            groups.setdefault((row["sink_key"], row["delivery_id"] or ""), []).append(row)
    return [(key, sorted(batch, key=lambda r: (r["as_of"], r["subject"])))
            for (key, _), batch in groups.items()]


def flush(lake: Lake, config: RoutesConfig, now: datetime,
          environ: Mapping[str, str] | None = None,
          judged_until: datetime | None = None) -> Flushed:
    """Send every queued row and every failed one that is due, grouped per route and sink;
    with `judged_until` (the instant the moods were last judged at), also the silenced changes
    whose silence is over and whose mood is still as they left it."""
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    sinks = {sink_key(route, sink): (route, sink) for route in config.routes
             for sink in route.sinks}
    outcome = Flushed()
    with _outbox_lock(lake):
        rows = read_deliveries(lake)
        before = json.dumps(rows, default=str)
        groups = _due(rows, sinks, now_naive,
                      utc_naive(judged_until) if judged_until else None, outcome)
        if not groups:
            if json.dumps(rows, default=str) != before:
                _save(lake, rows)
            return outcome
        for key, batch in groups:
            route, sink = sinks[key]
            delivery_id = batch[0]["delivery_id"] or _delivery_id(key, batch)
            for row in batch:
                row.update(status="sending", delivery_id=delivery_id,
                           attempts=row["attempts"] + 1)
            # Recorded before the first byte leaves: a crash from here on never sends it again.
            _save(lake, rows)
            try:
                notices = [_notice_from(row["notice"]) for row in batch]
                sent = send(route, sink, notices, delivery_id, now, environ)
            except Exception as error:
                # One bad sink must not stop the others; its message may hold a secret (a URL),
                # so only the kind of error is kept.
                sent = Delivery(sink.label, 400, f"not sent: {type(error).__name__}")
            for row in batch:
                row.update(http_status=sent.status, error=sent.error)
                if sent.ok:
                    row["status"] = "delivered"
                elif sent.retryable and row["attempts"] < MAX_ATTEMPTS:
                    row.update(status="failed",
                               next_attempt_at=_retry_at(row["attempts"], now_naive))
                else:
                    row["status"] = "gave_up"
            _save(lake, rows)
            outcome.messages.append({
                "route": route.name, "sink": sink.label, "delivery": delivery_id,
                "changes": ", ".join(f"{scope_of(row)} {row['state']}" for row in batch),
                "status": batch[0]["status"], "http": sent.status or "",
                "error": sent.error or ""})
            if sent.ok:
                outcome.delivered += 1
            else:
                outcome.failed += 1
                log.warning("route %s, %s: delivery %s failed: %s", route.name, sink.label,
                            delivery_id, sent.error)
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
                         formats.slack_message(route.name, notices), attempts=1)
    if sink.type == "pagerduty":
        return post_json(settings["url"], formats.pagerduty_event(
            notices[0], sink.secret("routing_key", environ) or "", route.name), attempts=1)
    if sink.type == "alertmanager":
        return post_json(alertmanager_url(sink, environ),
                         formats.alertmanager_alerts(notices, now), attempts=1)
    if sink.type == "webhook":
        return post_signed(settings.get("url") or sink.secret("url", environ) or "",
                           formats.webhook_body(route.name, delivery_id, notices),
                           delivery_id, sink.secret("secret", environ), attempts=1)
    message = formats.email_message(route.name, delivery_id, notices, settings["from"],
                                    settings["to"])
    return send_email(message, settings["host"], settings["port"], settings["starttls"],
                      sink.secret("username", environ), sink.secret("password", environ))


def firing(rows: Sequence[dict[str, Any]]) -> dict[str, list[Notice]]:
    """Per Alertmanager sink key, the scenarios whose latest change is a sent one that is not
    healthy (a later silenced or given-up change ends the refresh too)."""
    found: dict[str, list[Notice]] = {}
    for (_, _, key), row in _latest(list(rows)).items():
        if (row["sink_type"] == "alertmanager" and row["state"] != "healthy"
                and row["status"] in ("delivered", "sending")):
            try:
                found.setdefault(key, []).append(_notice_from(row["notice"]))
            except (ValueError, TypeError, KeyError):
                log.warning("a recorded change of %s cannot be read", scope_of(row))
    return found


def refresh_alertmanager(lake: Lake, config: RoutesConfig, now: datetime,
                         environ: Mapping[str, str] | None = None) -> int:
    """Send the still-firing alerts again, so Alertmanager does not resolve them on its own."""
    sinks = {sink_key(route, sink): sink for route in config.routes for sink in route.sinks
             if sink.type == "alertmanager"}
    if not sinks:
        return 0
    refreshed = 0
    for key, notices in firing(read_deliveries(lake)).items():
        if key in sinks:
            sent = post_json(alertmanager_url(sinks[key], environ),
                             [formats.firing_alert(n, now) for n in notices], attempts=1)
            refreshed += sent.ok
    return refreshed


def alertmanager_url(sink: Sink, environ: Mapping[str, str] | None = None) -> str:
    base = sink.settings.get("url") or sink.secret("url", environ) or ""
    return base.rstrip("/") + "/api/v2/alerts"
