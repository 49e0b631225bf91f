"""Every failed run, posted to the failure webhooks with its first error and a link to it."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from telemetry_assets.jobs import (
    LAUNCHED_BY_TAG,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    TRIGGER_TAG,
)
from telemetry_assets.resources import AutomationSettings
from telemetry_assets.webhooks import message, notify, slack_escaped


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


@run_failure_sensor(
    name="run_failure_webhook",
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts every failed run as JSON (Slack-compatible `text` plus `details`) to "
    "the comma-separated URLs in TELEMETRY_FAILURE_WEBHOOK_URLS.",
)
def run_failure_webhook(context: RunFailureSensorContext, automation: AutomationSettings) -> None:
    policy = automation.policy
    if not policy.failure_webhooks:
        context.log.info("TELEMETRY_FAILURE_WEBHOOK_URLS is not set: run "
                         f"{context.dagster_run.run_id} is not reported")
        return
    deliveries = notify(list(policy.failure_webhooks),
                        failure_report(context, policy.dagster_ui_url))
    failed = [f"{delivery.url}: {delivery.error}" for delivery in deliveries if not delivery.ok]
    if failed:
        # Shown on the sensor's tick and on the failed run's own log.
        raise RuntimeError("could not report the failed run: " + "; ".join(failed))
