"""Every 30 seconds: bring the open hours up to date from new landing files (provisional, see
telemetry_assets/live.py), then evaluate every scenario's mood at every minute since the last
evaluation, and notify each change of state at the minute it happened.

One sensor does both, in that order, so a page waits for one tick after the data lands, not for
two sensors' ticks one after the other; it is on by default, so a fresh `make ui` with the
receiver running pages without anyone turning it on.
"""

import json
from datetime import UTC, datetime, timedelta

import duckdb
from dagster import (
    AssetKey,
    AssetMaterialization,
    DefaultSensorStatus,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from telemetry_assets import live, markdown
from telemetry_assets.assets.alerts import ROUTED_DELIVERIES
from telemetry_assets.assets.live import OPEN_HOUR
from telemetry_assets.assets.reference import load_catalog
from telemetry_assets.mood import routing
from telemetry_assets.mood.burn_rates import changing_instants, current_mood, latest_data_time
from telemetry_assets.mood.outbox import (
    Evaluation,
    notify_changes,
    read_notifications,
    retry_failed,
    scenario_infos,
)
from telemetry_assets.mood.routing import load_configured_routes
from telemetry_assets.resources import MoodSettings, TelemetryStore
from telemetry_assets.tables import MINUTE_AGGREGATE
from telemetry_core.routes import RoutesConfig
from telemetry_core.silences import SilenceStore
from telemetry_core.slos import SloFileError

WATCHED_ASSET = AssetKey(MINUTE_AGGREGATE.asset)
# The furthest back one evaluation looks: after a long backfill, older changes are history to
# read on the dashboard, not pages to send now.
LOOKBACK = timedelta(days=1)
# Without new data, windows still slide: the moods are judged again once a minute has passed.
REJUDGE_AFTER = timedelta(minutes=1)


def deliveries_report(routes: RoutesConfig, messages: list[dict],
                      silenced: list[dict]) -> AssetMaterialization:
    """What an evaluation sent (or kept silent), and the routes it followed, for the UI."""
    statuses = [message["status"] for message in messages]
    return AssetMaterialization(
        asset_key=ROUTED_DELIVERIES,
        description=f"{len(messages)} message(s) sent or attempted, {len(silenced)} change(s) "
        "silenced",
        metadata={
            "delivered": statuses.count("delivered"),
            "failed": statuses.count("failed"),
            "gave_up": statuses.count("gave_up"),
            "silenced": len(silenced),
            "messages": markdown.table(messages, ["route", "sink", "changes", "status", "http",
                                                  "error"]),
            "silenced_changes": markdown.table(
                [{"route": r["route"], "sink": r["sink"], "change": routing.scope_of(r),
                  "state": r["state"], "silence": r["silence_id"]} for r in silenced]),
            "routes": MetadataValue.md("\n".join(
                f"- {markdown.cell(line)}" for line in routes.describe()) or "none"),
            "routes_file": str(routes.source) if routes.source else "none",
        },
    )


def partner_commitments(context: SensorEvaluationContext, store: TelemetryStore,
                        routes: RoutesConfig, partners: list[str]) -> dict[str, dict[str, float]]:
    """Per partner, the targets of slos.yaml's commitments to its tier (subject -> target %)."""
    if not partners:
        return {}
    try:
        catalog = load_catalog(store.lake, store.settings)
    except (SloFileError, duckdb.Error, OSError) as error:
        # The objectives asset fails on the same file and says why; the partners' moods are
        # judged against the scenarios' own targets meanwhile.
        context.log.warning(f"partner commitments not read, scenario targets used: {error}")
        return {}
    found: dict[str, dict[str, float]] = {}
    for partner in partners:
        tier = routes.partners.get(partner)
        found[partner] = {objective.subject: objective.target_for(tier)
                          for objective in catalog.objectives
                          if tier in dict(objective.tier_targets)}
    return found


def utc_now() -> datetime:
    return datetime.now(UTC)


def evaluated_until(cursor: dict, notified: list[dict], latest: datetime) -> datetime:
    """The instant up to which moods were judged: the cursor's, else the latest notified change
    (a lost cursor replays nothing), else an hour before the data ends (a first evaluation)."""
    if cursor.get("as_of"):
        after = datetime.fromisoformat(cursor["as_of"])
    elif notified:
        after = max(row["as_of"] for row in notified)
    else:
        after = latest - timedelta(hours=1)
    return max(after, latest - LOOKBACK)


@sensor(
    name="service_mood",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every 30 s: refreshes the open hours' provisional minute aggregates from new "
    "landing files (each file parsed once), then judges every scenario's mood (healthy, "
    "degraded, breaching) at every minute since the last judgement and posts each change, once, "
    "to the webhooks in TELEMETRY_MOOD_WEBHOOKS.",
)
def service_mood_sensor(context: SensorEvaluationContext, store: TelemetryStore,
                        mood: MoodSettings):
    """Refresh the open hours, evaluate the mood when its data has changed, notify changes."""
    lake = store.lake
    urls = mood.webhook_urls
    # A routes file that cannot be read fails the tick, loudly, rather than dropping what it
    # routes; the changes are judged and recorded again once it is fixed.
    routes = load_configured_routes(lake, mood.routes_file, mood.environment())
    retried, retry_failures = retry_failed(lake)
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = utc_now()
    resent = routing.flush(lake, routes, now, mood.environment(),
                           datetime.fromisoformat(cursor["as_of"]) if cursor.get("as_of")
                           else None)
    routing.refresh_alertmanager(lake, routes, now, mood.environment())
    try:
        refreshes = live.refresh(lake, store.settings, store.dedupe_horizon, utc_now())
    except (duckdb.Error, OSError) as error:
        # A refresh that cannot be made must not stop the mood from being judged on what is
        # there; the next tick tries again from the last whole refresh.
        context.log.warning(f"the open hours could not be refreshed: {error}")
        refreshes = []
    reported = [
        AssetMaterialization(
            asset_key=OPEN_HOUR, partition=refresh.partition_key,
            description="provisional: replaced by the exact hourly run",
            metadata={"as_of": refresh.as_of.isoformat(), "files": refresh.files,
                      "files_parsed": refresh.files_parsed, "events": refresh.events,
                      "rejected_lines": refresh.rejected, "requests": refresh.requests,
                      "failed_requests": refresh.failed})
        for refresh in refreshes if refresh.changed
    ]

    if resent.messages:
        reported.append(deliveries_report(routes, resent.messages, []))

    def result(said: str, next_cursor: dict | None = None):
        if next_cursor is not None:
            context.update_cursor(json.dumps(next_cursor))
        return SensorResult(skip_reason=said, asset_events=reported) if reported \
            else SkipReason(said)

    records = context.instance.fetch_materializations(WATCHED_ASSET, limit=1).records
    storage_id = records[0].storage_id if records else -1
    judged_as_of = datetime.fromisoformat(cursor["as_of"]) if cursor.get("as_of") else None
    live_as_of = max((refresh.as_of for refresh in refreshes if refresh.files), default=None)
    if not records and live_as_of is None:
        return result("minute_aggregate has not been materialized yet")
    slid = (live_as_of is not None
            and (judged_as_of is None or live_as_of - judged_as_of >= REJUDGE_AFTER))
    if storage_id <= cursor.get("storage_id", -1) and not reported and not slid:
        return result(
            f"no minute_aggregate update since the last evaluation; retried posts delivered "
            f"{retried + resent.delivered}, failed {retry_failures + resent.failed}"
        )
    policy = mood.policy
    notified = read_notifications(lake)
    scoped = routes.scoped_partners()
    commitments = partner_commitments(context, store, routes, scoped)

    def judge(con: duckdb.DuckDBPyConnection):
        latest = latest_data_time(con)
        if latest is None:
            return None, [], {}
        after = evaluated_until(cursor, notified, latest)
        # The mood of all traffic, then each partner's own that a route asks for, against the
        # partner's own commitments.
        reports = [current_mood(con, policy, at, partner, commitments.get(partner))
                   for partner in [None, *scoped]
                   for at in changing_instants(con, policy, after, latest, partner,
                                               commitments.get(partner))]
        return max(after, latest), reports, scenario_infos(con)

    try:
        # Closed before posting: a slow webhook must not hold the warehouse open.
        reading = live.read_current(lake, judge)
    except (FileNotFoundError, duckdb.CatalogException) as missing:
        return result(f"cannot evaluate the mood yet: {missing}")
    for damage in reading.damage:
        context.log.warning(f"the mood is judged without a damaged file: {damage}")
    judged_until, reports, infos = reading.value
    evaluation = Evaluation(judged_until, [], 0, 0)
    silences = SilenceStore(lake.root).around(
        min((report.as_of for report in reports), default=now), now + LOOKBACK)

    held: list[dict] = []

    def hold_for_routes(notices):
        held.extend(routing.record(lake, routes, notices, silences, now))

    for report in reports:
        done = notify_changes(lake, report, urls, now, infos, routes.dashboard_url,
                              hold_for_routes if routes.routes else None)
        evaluation.changes += [f"{change} at {report.as_of:%H:%M}" for change in done.changes]
        evaluation.delivered += done.delivered
        evaluation.failed += done.failed
        evaluation.notices += done.notices
    if evaluation.notices and routes.routes:
        sent = routing.flush(lake, routes, now, mood.environment(), judged_until)
        evaluation.delivered += sent.delivered
        evaluation.failed += sent.failed
        silenced = [row for row in held if row["status"] == "silenced"]
        if sent.messages or silenced:
            reported.append(deliveries_report(routes, sent.messages, silenced))
    next_cursor: dict = {"storage_id": storage_id}
    if judged_until is not None:
        next_cursor["as_of"] = judged_until.isoformat()
    context.log.info(evaluation.summary())
    return result(evaluation.summary(), next_cursor)
