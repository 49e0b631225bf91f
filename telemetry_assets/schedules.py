"""Schedules: each closed hour after a delay for late events, each closed day once its hours are in.

Both are schedules over the partitioned jobs (not declarative automation): a tick names exactly
which partition it runs and why it skips, can be evaluated without a daemon in a test, and runs
the same job, as one run, that `telemetry backfill` runs. Both tick every five minutes and
decide at evaluation time, so the delay is read from the environment of the code server at
each tick, never at import.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindow,
    schedule,
)

from telemetry_assets.partitions import daily_partitions, hourly_partitions
from telemetry_assets.tables import MINUTE_AGGREGATE, MINUTE_LATENCY, PUBLISHED_TABLES

TICK_CRON = "*/5 * * * *"
TRIGGER_TAG = "telemetry/trigger"
PARTITION_TAG = "dagster/partition"
# The hourly assets a daily run reads: a day is ready when both have all 24 of its hours.
DAY_INPUTS = (AssetKey(MINUTE_AGGREGATE.asset), AssetKey(MINUTE_LATENCY.asset))
# A day counts as processed when every published table has it.
DAY_OUTPUTS = tuple(AssetKey(table.asset) for table in PUBLISHED_TABLES)
if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _minutes(value: str, name: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of minutes, not {value!r}") from None
    if minutes < 0:
        raise ValueError(f"{name} must not be negative, not {minutes}")
    return minutes


@dataclass(frozen=True)
class AutomationSettings:
    """When scheduled and late-data runs happen; read from the environment at each evaluation."""

    hourly_delay: timedelta = timedelta(minutes=15)
    daily_lookback: timedelta = timedelta(days=3)
    late_data_lookback: timedelta = timedelta(hours=72)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AutomationSettings":
        env = os.environ if environ is None else environ
        defaults = cls()

        def setting(name: str, default: timedelta, unit: timedelta) -> timedelta:
            value = env.get(name, "").strip()
            return unit * _minutes(value, name) if value else default

        return cls(
            hourly_delay=setting("TELEMETRY_HOURLY_DELAY_MINUTES", defaults.hourly_delay,
                                 timedelta(minutes=1)),
            daily_lookback=defaults.daily_lookback,
            late_data_lookback=setting("TELEMETRY_LATE_DATA_LOOKBACK_HOURS",
                                       defaults.late_data_lookback, HOUR),
        )


def tick_time(context: ScheduleEvaluationContext) -> datetime:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=UTC)
    return scheduled.astimezone(UTC)


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def keys_in(partitions, start: datetime, end: datetime) -> list[str]:
    """Partition keys of every partition starting in [start, end), none before the first."""
    start = max(start, partitions.start)
    return list(partitions.get_partition_keys_in_time_window(TimeWindow(start, end))) \
        if start < end else []


def due_hour(tick: datetime, delay: timedelta) -> str | None:
    """The latest hour whose end plus the delay has passed at `tick`."""
    closed_by = _floor_hour(tick - delay)
    keys = keys_in(hourly_partitions, closed_by - HOUR, closed_by)
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
    instance: DagsterInstance, tick: datetime, settings: AutomationSettings
) -> RunRequest | SkipReason:
    hour = due_hour(tick, settings.hourly_delay)
    if hour is None:
        return SkipReason("no hour has closed since the first partition")
    if launched(instance, "hourly_pipeline", hour):
        return SkipReason(f"hour {hour} already has a run")
    return RunRequest(partition_key=hour, run_key=hour, tags={TRIGGER_TAG: "schedule"})


def daily_requests(
    instance: DagsterInstance, tick: datetime, settings: AutomationSettings
) -> list[RunRequest] | SkipReason:
    """Every recently closed day whose hours are all in and that nothing has run yet."""
    today = _floor_hour(tick).replace(hour=0)
    days = keys_in(daily_partitions, today - settings.daily_lookback, today)
    ready_hours = {key: instance.get_materialized_partitions(key) for key in DAY_INPUTS}
    requests, statuses = [], []
    for day in days:
        if launched(instance, "daily_pipeline", day) or all(
            materialized(instance, key, day) for key in DAY_OUTPUTS
        ):
            statuses.append(f"day {day} has been run")
            continue
        day_window = daily_partitions.time_window_for_partition_key(day)
        hours = keys_in(hourly_partitions, day_window.start, day_window.end)
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


def build_schedules(
    hourly_job: "UnresolvedAssetJobDefinition", daily_job: "UnresolvedAssetJobDefinition"
) -> list[ScheduleDefinition]:
    @schedule(
        name="hourly_pipeline_schedule",
        job=hourly_job,
        cron_schedule=TICK_CRON,
        execution_timezone="UTC",
        description="Each closed hour, TELEMETRY_HOURLY_DELAY_MINUTES (default 15) after it "
        "ends, so that late events are in; one run per hour.",
    )
    def hourly_pipeline_schedule(context: ScheduleEvaluationContext):
        return hourly_request(context.instance, tick_time(context), AutomationSettings.from_env())

    @schedule(
        name="daily_pipeline_schedule",
        job=daily_job,
        cron_schedule=TICK_CRON,
        execution_timezone="UTC",
        description="Each closed day, as soon as all 24 of its hours are processed; one run "
        "per day.",
    )
    def daily_pipeline_schedule(context: ScheduleEvaluationContext):
        return daily_requests(context.instance, tick_time(context), AutomationSettings.from_env())

    return [hourly_pipeline_schedule, daily_pipeline_schedule]
