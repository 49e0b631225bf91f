"""Schedules: each closed hour after a delay for late events, each closed day once its hours are in.

Both are schedules over the partitioned jobs (not declarative automation): a tick names exactly
which partition it runs and why it skips, can be evaluated without a daemon in a test, and runs
the same job, as one run, that `telemetry backfill` runs. Both tick every five minutes and
decide at evaluation time, so the delay is read from the environment of the code server at
each tick, never at import.
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindow,
    schedule,
)

from telemetry_assets.jobs import (
    DAILY_JOB,
    HOURLY_JOB,
    PARTITION_TAG,
    TRIGGER_TAG,
    daily_job,
    hourly_job,
    sla_job,
)
from telemetry_assets.partitions import (
    daily_partitions,
    hourly_partitions,
    keys_in,
    monthly_partitions,
)
from telemetry_assets.resources import AutomationPolicy, AutomationSettings
from telemetry_assets.tables import MINUTE_AGGREGATE, MINUTE_LATENCY, PUBLISHED_TABLES

TICK_CRON = "*/5 * * * *"
# The hourly assets a daily run reads: a day is ready when both have all 24 of its hours.
DAY_INPUTS = (AssetKey(MINUTE_AGGREGATE.asset), AssetKey(MINUTE_LATENCY.asset))
# A day counts as processed when every published table has it.
DAY_OUTPUTS = tuple(AssetKey(table.asset) for table in PUBLISHED_TABLES)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def tick_time(context: ScheduleEvaluationContext) -> datetime:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=UTC)
    return scheduled.astimezone(UTC)


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def due_hour(tick: datetime, delay: timedelta) -> str | None:
    """The latest hour whose end plus the delay has passed at `tick`."""
    closed_by = _floor_hour(tick - delay)
    keys = keys_in(hourly_partitions, TimeWindow(closed_by - HOUR, closed_by))
    return keys[0] if keys else None


def launched(instance: DagsterInstance, job_name: str, partition_key: str) -> bool:
    """A run of the job for exactly this partition exists, whatever its status.

    Failed runs count: a failure is reported by the run-failure sensor and re-run by a person,
    not relaunched every tick.
    """
    runs = instance.get_run_records(
        RunsFilter(job_name=job_name, tags={PARTITION_TAG: partition_key}), limit=1
    )
    return bool(runs)


def materialized(instance: DagsterInstance, asset_key: AssetKey, partition_key: str) -> bool:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    )
    return bool(records.records)


def hourly_request(
    instance: DagsterInstance, tick: datetime, settings: AutomationPolicy
) -> RunRequest | SkipReason:
    hour = due_hour(tick, settings.hourly_delay)
    if hour is None:
        return SkipReason("no hour has closed since the first partition")
    if launched(instance, HOURLY_JOB, hour):
        return SkipReason(f"hour {hour} already has a run")
    return RunRequest(partition_key=hour, run_key=hour, tags={TRIGGER_TAG: "schedule"})


def daily_requests(
    instance: DagsterInstance, tick: datetime, settings: AutomationPolicy
) -> list[RunRequest] | SkipReason:
    """Every recently closed day whose hours are all in and that nothing has run yet."""
    today = _floor_hour(tick).replace(hour=0)
    days = keys_in(daily_partitions, TimeWindow(today - settings.daily_lookback, today))
    ready_hours = {key: instance.get_materialized_partitions(key) for key in DAY_INPUTS}
    requests, statuses = [], []
    for day in days:
        if launched(instance, DAILY_JOB, day) or all(
            materialized(instance, key, day) for key in DAY_OUTPUTS
        ):
            statuses.append(f"day {day} has been run")
            continue
        day_window = daily_partitions.time_window_for_partition_key(day)
        hours = keys_in(hourly_partitions, day_window)
        missing = sorted({hour for hour in hours for key in DAY_INPUTS
                          if hour not in ready_hours[key]})
        if missing:
            statuses.append(f"day {day} waits for {len(missing)} hours (first {missing[0]})")
            continue
        requests.append(RunRequest(partition_key=day, run_key=day,
                                   tags={TRIGGER_TAG: "schedule"}))
    if requests:
        return requests
    # The newest closed day is the one a person looking at the tick cares about.
    return SkipReason(statuses[-1] if statuses else "no day has closed since the first partition")


@schedule(
    name="hourly_pipeline_schedule",
    job=hourly_job,
    cron_schedule=TICK_CRON,
    execution_timezone="UTC",
    description="Each closed hour, TELEMETRY_HOURLY_DELAY_MINUTES (default 15) after it "
    "ends, so that late events are in; one run per hour.",
)
def hourly_pipeline_schedule(context: ScheduleEvaluationContext, automation: AutomationSettings):
    return hourly_request(context.instance, tick_time(context), automation.policy)


@schedule(
    name="daily_pipeline_schedule",
    job=daily_job,
    cron_schedule=TICK_CRON,
    execution_timezone="UTC",
    description="Each closed day, as soon as all 24 of its hours are processed; one run "
    "per day.",
)
def daily_pipeline_schedule(context: ScheduleEvaluationContext, automation: AutomationSettings):
    return daily_requests(context.instance, tick_time(context), automation.policy)


@schedule(
    name="sla_statements_schedule",
    job=sla_job,
    cron_schedule="0 6 2 * *",
    execution_timezone="UTC",
    description="Each closed month's partner SLA statements, final, on the 2nd at 06:00 UTC "
    "(its last day is published shortly after midnight on the 1st).",
)
def sla_statements_schedule(context: ScheduleEvaluationContext):
    # The partitions include the open month (for preliminary statements): the closed one is
    # the month before the tick's.
    month = monthly_partitions.get_prev_partition_window(tick_time(context))
    key = monthly_partitions.get_partition_key_for_timestamp(month.start.timestamp())
    return RunRequest(run_key=f"sla_statements:{key}", partition_key=key,
                      tags={TRIGGER_TAG: "schedule"})


schedules = [hourly_pipeline_schedule, daily_pipeline_schedule, sla_statements_schedule]
