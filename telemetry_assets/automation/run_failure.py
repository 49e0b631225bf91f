"""Every failed run: an annotation on the charts, and a post to the failure webhooks, with its
first error and a link to it."""

import logging
from datetime import UTC, datetime

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from telemetry_assets.jobs import (
    LAUNCHED_BY_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    TRIGGER_TAG,
)
from telemetry_assets.resources import AutomationSettings, TelemetryStore
from telemetry_assets.webhooks import message, notify, slack_escaped
from telemetry_core.annotations import MAX_TEXT_CHARS, Annotation, note, platform_id

log = logging.getLogger(__name__)


def failure_report(context: RunFailureSensorContext, ui_url: str | None) -> dict:
    """A Slack-compatible message about a failed run, with the facts under `details`."""
    run = context.dagster_run
    partitions = run.tags.get(PARTITION_TAG) or (
        f"{run.tags[RANGE_START_TAG]}...{run.tags[RANGE_END_TAG]}"
        if RANGE_START_TAG in run.tags and RANGE_END_TAG in run.tags else None
    )
    steps = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        cause = error.cause if error and error.cause else error
        steps.append({"step": event.step_key,
                      "error": cause.message.strip() if cause else event.message})
    first_error = steps[0]["error"] if steps else context.failure_event.message
    where = f" for {partitions}" if partitions else ""
    run_url = f"{ui_url.rstrip('/')}/runs/{run.run_id}" if ui_url else None
    # An error quotes user data (a reference CSV's values); the link after it is meant as one.
    text = f"Dagster run of {run.job_name}{where} failed: {slack_escaped(first_error)}"
    if run_url:
        text += f" <{run_url}|run {run.run_id[:8]}>"
    return message(
        text,
        run_id=run.run_id,
        job=run.job_name,
        partitions=partitions,
        trigger=run.tags.get(TRIGGER_TAG) or run.tags.get(LAUNCHED_BY_TAG),
        error=first_error,
        failed_steps=steps,
        run_url=run_url,
    )


def failure_annotation(context: RunFailureSensorContext, report: dict) -> Annotation:
    run = context.dagster_run
    details = report["details"]
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
    where = f" for {details['partitions']}" if details["partitions"] else ""
    return Annotation(
        starts_at=datetime.fromtimestamp(ended, UTC).replace(tzinfo=None), kind="run_failed",
        text=f"run of {run.job_name}{where} failed: {details['error']}"[:MAX_TEXT_CHARS],
        source="platform:run_failure", link=details["run_url"],
        annotation_id=platform_id("run_failed", run.run_id),
    )


@run_failure_sensor(
    name="run_failure_webhook",
    default_status=DefaultSensorStatus.RUNNING,
    description="Records every failed run as an annotation (context.annotations) and posts it "
    "as JSON (Slack-compatible `text` plus `details`) to the comma-separated URLs in "
    "TELEMETRY_FAILURE_WEBHOOK_URLS.",
)
def run_failure_webhook(context: RunFailureSensorContext, automation: AutomationSettings,
                        store: TelemetryStore) -> None:
    policy = automation.policy
    report = failure_report(context, policy.dagster_ui_url)
    note(store.settings.lake_dir, [failure_annotation(context, report)], log)
    if not policy.failure_webhooks:
        context.log.info("TELEMETRY_FAILURE_WEBHOOK_URLS is not set: run "
                         f"{context.dagster_run.run_id} is not reported")
        return
    deliveries = notify(list(policy.failure_webhooks), report)
    failed = [f"{delivery.url}: {delivery.error}" for delivery in deliveries if not delivery.ok]
    if failed:
        # Shown on the sensor's tick and on the failed run's own log.
        raise RuntimeError("could not report the failed run: " + "; ".join(failed))
