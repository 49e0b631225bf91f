"""After each minute-aggregate update, evaluate every scenario's mood at every minute since the
last evaluation, and notify each change of state at the minute it happened."""

import json
from datetime import datetime, timedelta

import duckdb
from dagster import AssetKey, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from telemetry_assets.mood.burn_rates import changing_instants, current_mood, latest_data_time
from telemetry_assets.mood.outbox import (
    Evaluation,
    notify_changes,
    read_notifications,
    retry_failed,
)
from telemetry_assets.resources import MoodSettings, TelemetryStore
from telemetry_assets.tables import MINUTE_AGGREGATE

WATCHED_ASSET = AssetKey(MINUTE_AGGREGATE.asset)
# The furthest back one evaluation looks: after a long backfill, older changes are history to
# read on the dashboard, not pages to send now.
LOOKBACK = timedelta(days=1)


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
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="After each minute_aggregate update, judges every scenario's mood (healthy, "
    "degraded, breaching) at every minute since the last judgement and posts each change, once, "
    "to the webhooks in TELEMETRY_MOOD_WEBHOOKS.",
)
def service_mood_sensor(context: SensorEvaluationContext, store: TelemetryStore,
                        mood: MoodSettings):
    """Evaluate the mood when the minute aggregate has changed, and notify changes of state."""
    lake = store.lake
    urls = mood.webhook_urls
    retried, retry_failures = retry_failed(lake)
    cursor = json.loads(context.cursor) if context.cursor else {}
    records = context.instance.fetch_materializations(WATCHED_ASSET, limit=1).records
    if not records:
        return SkipReason("minute_aggregate has not been materialized yet")
    storage_id = records[0].storage_id
    if storage_id <= cursor.get("storage_id", -1):
        return SkipReason(
            f"no minute_aggregate update since the last evaluation; retried posts delivered "
            f"{retried}, failed {retry_failures}"
        )
    policy = mood.policy
    notified = read_notifications(lake)

    def judge(con: duckdb.DuckDBPyConnection):
        latest = latest_data_time(con)
        if latest is None:
            return None, []
        after = evaluated_until(cursor, notified, latest)
        reports = [current_mood(con, policy, at)
                   for at in changing_instants(con, policy, after, latest)]
        return max(after, latest), reports

    try:
        # Closed before posting: a slow webhook must not hold the warehouse open.
        reading = lake.read(judge)
    except (FileNotFoundError, duckdb.CatalogException) as missing:
        return SkipReason(f"cannot evaluate the mood yet: {missing}")
    for damage in reading.damage:
        context.log.warning(f"the mood is judged without a damaged file: {damage}")
    judged_until, reports = reading.value
    evaluation = Evaluation(judged_until, [], 0, 0)
    for report in reports:
        done = notify_changes(lake, report, urls)
        evaluation.changes += [f"{change} at {report.as_of:%H:%M}" for change in done.changes]
        evaluation.delivered += done.delivered
        evaluation.failed += done.failed
    next_cursor: dict = {"storage_id": storage_id}
    if judged_until is not None:
        next_cursor["as_of"] = judged_until.isoformat()
    context.update_cursor(json.dumps(next_cursor))
    context.log.info(evaluation.summary())
    return SkipReason(evaluation.summary())
