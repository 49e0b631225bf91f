"""The mood outbox: every change of a scenario's state, recorded, then posted once.

Each change is recorded in `alerts.mood_notifications` (one row per change and webhook) before
it is posted, so it is never posted twice: not on the next tick, not after a restart with a lost
cursor, not when an hour is re-run. A post that the webhook refused (an HTTP error, or no answer
after `post_json`'s retries) is recorded as failed and tried again on later ticks while it is
still the scenario's latest change; one left `sending` by a crash mid-post is never re-sent,
because it may have arrived.
"""

import json
import logging
import math
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from telemetry_assets.lake import Lake
from telemetry_assets.mood.burn_rates import MoodReport, ScenarioMood, describe, format_duration
from telemetry_assets.tables import MOOD_NOTIFICATIONS
from telemetry_assets.webhooks import message, post_json, slack_escaped
from telemetry_core.annotations import Annotation, note, platform_id
from telemetry_core.sql import compute_connection
from telemetry_notify.formats import Notice

MAX_ATTEMPTS = 3
log = logging.getLogger(__name__)

NOTIFICATION_SCHEMA = pa.schema([
    ("notification_id", pa.string()),
    ("scenario_id", pa.string()),
    # None: the mood of all traffic; a partner-scoped route's partner otherwise.
    ("partner_id", pa.string()),
    ("previous_state", pa.string()),
    ("state", pa.string()),
    ("as_of", pa.timestamp("us")),
    ("text", pa.string()),
    ("payload", pa.string()),
    ("url", pa.string()),
    # unsent (no webhook configured), pending, sending, delivered or failed.
    ("status", pa.string()),
    ("http_status", pa.int32()),
    ("error", pa.string()),
    ("attempts", pa.int32()),
    ("recorded_at", pa.timestamp("us")),
])


def _finite(value: float | None, digits: int = 4) -> float | None:
    """JSON has no infinity: an undefined figure is sent as null."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def payload(mood: ScenarioMood, previous: str, report: MoodReport, notification_id: str,
            ) -> dict[str, Any]:
    """A Slack-compatible message: `text` for people, `details` with every figure (and the
    reference's names as they are) for machines."""
    icon = {"healthy": ":large_green_circle:", "degraded": ":large_yellow_circle:",
            "breaching": ":red_circle:"}[mood.state]
    windows = mood.windows.values()
    return message(
        f"{icon} {describe(mood, report.policy.rules, escape=slack_escaped)}",
        event="service_mood_changed",
        notification_id=notification_id,
        scenario_id=mood.scenario_id,
        scenario_name=mood.scenario_name,
        previous_state=previous,
        state=mood.state,
        as_of=mood.as_of.replace(tzinfo=UTC).isoformat(),
        provisional=mood.provisional,
        objective=mood.kind,
        latency_threshold_ms=mood.threshold_ms,
        slo_target_pct=mood.slo_target_pct,
        firing=list(mood.firing),
        burn_rates={w.name: _finite(w.burn_rate) for w in windows},
        requests={w.name: w.requests for w in windows},
        failed_requests={w.name: w.failed for w in windows},
        judged={w.name: w.judged for w in windows},
        min_requests=report.policy.min_requests,
        error_budget={
            "window": format_duration(mood.budget_minutes),
            "requests": mood.budget.requests,
            "failed_requests": mood.budget.failed,
            "allowed_failures": _finite(mood.allowed_failures),
            "remaining_pct": _finite(mood.budget_remaining_pct),
        },
        overall_state=report.overall,
    )


def read_notifications(lake: Lake) -> list[dict[str, Any]]:
    """Every recorded notification row, oldest first."""
    with closing(compute_connection()) as con:
        if not lake.register(con, MOOD_NOTIFICATIONS, existing_only=True):
            return []
        relation = con.table(MOOD_NOTIFICATIONS.name).order(
            "recorded_at, as_of, notification_id, url")
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _save(lake: Lake, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=NOTIFICATION_SCHEMA)
    with closing(compute_connection()) as con:
        lake.write(MOOD_NOTIFICATIONS, None, con.from_arrow(table))


def last_states(rows: list[dict[str, Any]], partner_id: str | None = None) -> dict[str, str]:
    """The state each scenario was last notified in (in the mood of all traffic, or of
    `partner_id`)."""
    states: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        if row.get("partner_id") == partner_id:
            states[row["scenario_id"]] = row["state"]
    return states


def episode_start(rows: list[dict[str, Any]], scenario_id: str, partner_id: str | None,
                  as_of: datetime) -> datetime:
    """When the episode a change at `as_of` belongs to began: the last change away from healthy
    at or before it, else `as_of` itself."""
    started = as_of
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        if (row["scenario_id"] != scenario_id or row.get("partner_id") != partner_id
                or row["as_of"] > as_of):
            continue
        if row["previous_state"] == "healthy" and row["state"] != "healthy":
            started = row["as_of"]
    return started


@dataclass
class Evaluation:
    """What one evaluation did: the changes it found and the posts it made."""

    as_of: datetime | None
    changes: list[str]
    delivered: int
    failed: int
    # The changes as the routes see them (telemetry_assets/mood/routing.py).
    notices: list[Notice] = field(default_factory=list)

    def summary(self) -> str:
        when = f"as of {self.as_of:%Y-%m-%d %H:%M} UTC" if self.as_of else "no data"
        changes = "; ".join(self.changes) if self.changes else "no change of state"
        return f"mood {when}: {changes}; posts delivered {self.delivered}, failed {self.failed}"


def _deliver(lake: Lake, rows: list[dict[str, Any]], pending: list[dict[str, Any]]) -> tuple[
        int, int]:
    """Post the pending rows, recording each attempt before it is made and its outcome after."""
    if not pending:
        return 0, 0
    for row in pending:
        row["status"] = "sending"
        row["attempts"] += 1
    _save(lake, rows)
    delivered = failed = 0
    for row in pending:
        outcome = post_json(row["url"], json.loads(row["payload"]))
        row["status"] = "delivered" if outcome.ok else "failed"
        row["http_status"] = outcome.status
        row["error"] = outcome.error
        delivered += outcome.ok
        failed += not outcome.ok
    _save(lake, rows)
    return delivered, failed


def retry_failed(lake: Lake) -> tuple[int, int]:
    """Post the failed (or never attempted) posts of each scenario's latest change again, up to
    MAX_ATTEMPTS."""
    rows = read_notifications(lake)
    latest: dict[tuple[str, str | None], str] = {}
    for row in sorted(rows, key=lambda r: (r["as_of"], r["recorded_at"])):
        latest[row["scenario_id"], row.get("partner_id")] = row["notification_id"]
    pending = [row for row in rows
               if row["status"] in ("pending", "failed") and row["attempts"] < MAX_ATTEMPTS
               and latest[row["scenario_id"], row.get("partner_id")] == row["notification_id"]]
    return _deliver(lake, rows, pending)


def episode_annotation(mood: ScenarioMood, previous: str, notification_id: str,
                       text: str) -> Annotation | None:
    """The start or the end of an incident (a breaching episode) as an annotation on the
    scenario's charts; other changes are in the notifications list only."""
    if (mood.state == "breaching") == (previous == "breaching"):
        return None
    # A latency objective's subject is `scenario/objective`: the annotation is its scenario's.
    scenario_id = mood.scenario_id if mood.kind == "availability" else \
        mood.scenario_id.rpartition("/")[0] or mood.scenario_id
    return Annotation(
        starts_at=mood.as_of, scope="scenario", scope_value=scenario_id,
        kind="incident_start" if mood.state == "breaching" else "incident_end",
        text=text, source="platform:service_mood",
        annotation_id=platform_id("mood", notification_id),
    )


@dataclass(frozen=True)
class ScenarioInfo:
    """What scenarios.csv says of a scenario that a message links to."""

    service: str | None
    runbook_url: str | None = None


def notify_changes(
    lake: Lake, report: MoodReport | None, urls: list[str], now: datetime | None = None,
    scenarios: Mapping[str, ScenarioInfo] | None = None, dashboard_url: str | None = None,
    before_recording: Callable[[list[Notice]], Any] | None = None,
) -> Evaluation:
    """Record every change of state since the last notified one, then post it to `urls` (the
    mood of all traffic only: a partner's own mood goes to the routes that ask for it).
    `before_recording` is given the changes before they are recorded: once they are, no later
    evaluation finds them again, so whatever else must hold them (the routes' deliveries)
    holds them first."""
    if report is None:
        return Evaluation(None, [], 0, 0)
    rows = read_notifications(lake)
    known = {row["notification_id"] for row in rows}
    partner = report.partner_id
    previous_states = last_states(rows, partner)
    recorded_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    urls = urls if partner is None else []
    new_rows, changes, episodes, notices = [], [], [], []
    for mood in report.scenarios:
        # A scenario never notified about is taken to have been healthy.
        previous = previous_states.get(mood.scenario_id, "healthy")
        scope = f"{mood.scenario_id}@{partner}" if partner else mood.scenario_id
        notification_id = f"{scope}:{previous}->{mood.state}@{mood.as_of:%Y-%m-%dT%H:%M}"
        if mood.state == previous or notification_id in known:
            continue
        body = payload(mood, previous, report, notification_id)
        changes.append(f"{scope} {previous} -> {mood.state}")
        text = describe(mood, report.policy.rules)
        if partner is not None:
            text = f"For partner {partner}: {text}"
        episode = episode_annotation(mood, previous, notification_id, text)
        if episode is not None and partner is None:
            episodes.append(episode)
        started = (mood.as_of if previous == "healthy"
                   else episode_start(rows, mood.scenario_id, partner, mood.as_of))
        notices.append(notice(mood, previous, notification_id, text, body["details"], started,
                              partner, (scenarios or {}).get(mood.scenario_id.partition("/")[0]),
                              dashboard_url))
        for url in urls or [""]:
            new_rows.append({
                "notification_id": notification_id,
                "scenario_id": mood.scenario_id,
                "partner_id": partner,
                "previous_state": previous,
                "state": mood.state,
                "as_of": mood.as_of,
                "text": body["text"] if partner is None else text,
                "payload": json.dumps(body),
                "url": url,
                "status": "pending" if url else "unsent",
                "http_status": None,
                "error": None,
                "attempts": 0,
                "recorded_at": recorded_at,
            })
    if not new_rows:
        return Evaluation(report.as_of, changes, 0, 0)
    # Before the outbox: once it holds the change, no later evaluation finds it to note.
    note(lake.root, episodes, log)
    if before_recording is not None:
        before_recording(notices)
    rows.extend(new_rows)
    _save(lake, rows)
    lake.publish_views([MOOD_NOTIFICATIONS])
    delivered, failed = _deliver(lake, rows, [row for row in new_rows if row["url"]])
    return Evaluation(report.as_of, changes, delivered, failed, notices)


def scenario_infos(con: Any) -> dict[str, ScenarioInfo]:
    """Each reference scenario's service and runbook (the column is optional)."""
    columns = {name for (name,) in con.execute(
        "select column_name from duckdb_columns() where schema_name = 'reference' "
        "and table_name = 'scenarios'").fetchall()}
    runbook = "runbook_url" if "runbook_url" in columns else "cast(null as varchar)"
    return {scenario: ScenarioInfo(service, url or None) for scenario, service, url in
            con.execute(f"select scenario_id, service, {runbook} from reference.scenarios")
            .fetchall()}


def notice(mood: ScenarioMood, previous: str, notification_id: str, text: str,
           details: Mapping[str, Any], started: datetime, partner: str | None,
           info: ScenarioInfo | None, dashboard_url: str | None) -> Notice:
    scenario_id = mood.scenario_id.partition("/")[0]
    link = None
    if dashboard_url:
        link = (f"{dashboard_url.rstrip('/')}/?day={mood.as_of:%Y-%m-%d}"
                f"&scenario={quote(scenario_id)}")
    return Notice(
        notification_id=notification_id, subject=mood.scenario_id, scenario_id=scenario_id,
        scenario_name=mood.scenario_name, service=info.service if info else None,
        partner_id=partner, previous_state=previous, state=mood.state, as_of=mood.as_of,
        episode_started=started, text=text, provisional=mood.provisional,
        runbook_url=info.runbook_url if info else None, dashboard_url=link,
        details=dict(details))
