"""After each minute-aggregate update, evaluate every scenario's mood and notify its changes."""

import json

import duckdb
from dagster import AssetKey, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from telemetry_assets.mood.burn_rates import current_mood
from telemetry_assets.mood.outbox import notify_changes, retry_failed
from telemetry_assets.resources import MoodSettings, TelemetryStore
from telemetry_assets.tables import MINUTE_AGGREGATE

WATCHED_ASSET = AssetKey(MINUTE_AGGREGATE.asset)


@sensor(
    name="service_mood",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="After each minute_aggregate update, posts every change of a scenario's mood "
    "(healthy, degraded, breaching) to the webhooks in TELEMETRY_MOOD_WEBHOOKS, once.",
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
    try:
        # Closed before posting: a slow webhook must not hold the warehouse open.
        reading = lake.read(lambda con: current_mood(con, policy))
    except (FileNotFoundError, duckdb.CatalogException) as missing:
        return SkipReason(f"cannot evaluate the mood yet: {missing}")
    for damage in reading.damage:
        context.log.warning(f"the mood is judged without a damaged file: {damage}")
    evaluation = notify_changes(lake, reading.value, urls)
    context.update_cursor(json.dumps({"storage_id": storage_id}))
    context.log.info(evaluation.summary())
    return SkipReason(evaluation.summary())
