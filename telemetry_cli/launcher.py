"""Launching the pipeline's jobs over a range of partitions as few runs, in this process."""

import fcntl
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import AssetKey, DagsterInstance, TimeWindow

from telemetry_assets.definitions import defs
from telemetry_assets.jobs import (
    DAILY_JOB,
    HOST_TAG,
    HOURLY_JOB,
    LATER_HOURS_TO_RERUN,
    LAUNCHED_BY_TAG,
    PID_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REFERENCE_JOB,
)
from telemetry_assets.partitions import daily_partitions, hourly_partitions, keys_in
from telemetry_assets.stage import PartitionProgress, progress_log
from telemetry_assets.tables import FILTERED_EVENTS
from telemetry_cli.watchdog import reaping_orphans

# The command prints a failed run's first error itself; the whole story (tracebacks included)
# stays in the run's event log, shown in the UI.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class BadRange(ValueError):
    """A backfill range that cannot be run, with a message saying why."""


class BackfillStopped(RuntimeError):
    """The backfill was asked to stop before its next run."""


class RunFailed(RuntimeError):
    """A run of the pipeline failed; the message carries the first step error."""

    def __init__(self, job_name: str, run_id: str, error: str):
        super().__init__(f"{job_name} run {run_id} failed: {error}")
        self.run_id = run_id


@dataclass(frozen=True)
class PartialDay:
    """A day the range touches but does not cover whole: its daily stages are not run."""

    key: str
    hours: int
    over: bool

    def reason(self) -> str:
        covered = f"{self.key}: only {self.hours} of its 24 hours are in this range"
        if not self.over:
            return f"{covered}, and the day is not over yet (its daily schedule runs it then)"
        start = daily_partitions.time_window_for_partition_key(self.key).start
        return (f"{covered}; run the day with --start {self.key} "
                f"--end {start + timedelta(days=1):%Y-%m-%d}")


@dataclass(frozen=True)
class BackfillPlan:
    """The partition keys of each job for a half-open range of time."""

    hourly_keys: list[str]
    daily_keys: list[str]
    partial_days: list[PartialDay] = field(default_factory=list)


def parse_moment(text: str) -> datetime:
    """A date (`2026-11-20`) or an hour (`2026-11-20T10:00`), as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise BadRange(f"{text!r} is not a date (2026-11-20) or hour (2026-11-20T10:00)") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def plan_backfill(start: datetime, end: datetime, now: datetime | None = None) -> BackfillPlan:
    """Hours in [start, end), and the days it covers whole; the days it touches only in part
    are named, not run."""
    now = now or datetime.now(UTC)
    if start.minute or start.second or start.microsecond or end.minute or end.second:
        raise BadRange("start and end must fall on whole hours")
    if end <= start:
        raise BadRange(f"the range is empty: end {end:%Y-%m-%d %H:%M} is not after start "
                       f"{start:%Y-%m-%d %H:%M} (the end is exclusive)")
    first = hourly_partitions.start
    if start < first:
        raise BadRange(f"the range starts before the first partition, {first:%Y-%m-%d %H:%M} UTC")
    last_complete_hour = now.replace(minute=0, second=0, microsecond=0)
    if end > last_complete_hour:
        raise BadRange(
            f"the range ends at {end:%Y-%m-%d %H:%M} UTC, after the last complete hour "
            f"({last_complete_hour:%Y-%m-%d %H:%M} UTC)"
        )
    hourly_keys = keys_in(hourly_partitions, TimeWindow(start, end))
    # A day's stages read all 24 of its hours, and a range with only some of them may never
    # have run the others: such a day is named for the person to run whole, not run.
    daily_keys, partial_days = [], []
    for key in keys_in(daily_partitions, TimeWindow(start.replace(hour=0), end)):
        day = daily_partitions.time_window_for_partition_key(key)
        if start <= day.start and day.end <= end:
            daily_keys.append(key)
        else:
            hours = (min(end, day.end) - max(start, day.start)) // timedelta(hours=1)
            partial_days.append(PartialDay(key, hours, over=day.end <= now))
    return BackfillPlan(hourly_keys, daily_keys, partial_days)


def instance_for_cli() -> DagsterInstance:
    """The persistent instance of DAGSTER_HOME, so that CLI runs show in the UI."""
    if not os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.ephemeral()
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    # Opening a brand-new DAGSTER_HOME creates its storage; two commands doing it at once
    # collide ("table runs already exists", two alembic heads). One at a time, then it exists.
    with open(home / ".telemetry-storage.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return DagsterInstance.get()


def run_job_range(instance: DagsterInstance, job_name: str, keys: list[str]) -> str:
    """Run a partitioned job over consecutive keys as one run; returns its run id."""
    tags = {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1],
            LAUNCHED_BY_TAG: "telemetry backfill"}
    return execute(instance, job_name, tags)


def run_reference(instance: DagsterInstance) -> str:
    return execute(instance, REFERENCE_JOB, {LAUNCHED_BY_TAG: "telemetry backfill"})


def execute(instance: DagsterInstance, job_name: str, tags: dict[str, str],
             partition_key: str | None = None, run_config: dict | None = None) -> str:
    job = defs.resolve_job_def(job_name)
    # Which process executes the run: if it dies, the run can be found and ended (see
    # automation/orphaned_runs.py).
    process = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    result = job.execute_in_process(
        instance=instance, tags={**tags, **process},
        run_config={**QUIET_LOGS, **(run_config or {})},
        raise_on_error=False, partition_key=partition_key,
    )
    if not result.success:
        failures = result.get_step_failure_events()
        error = failures[0].step_failure_data.error if failures else None
        message = error.cause.message if error and error.cause else (error.message if error else "")
        raise RunFailed(job_name, result.run_id, message.strip() or "see the run in the Dagster UI")
    return result.run_id


class _ProgressForwarder(logging.Handler):
    def __init__(self, callback: Callable[[PartitionProgress], None]):
        super().__init__()
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, "progress", None)
        if progress is not None:
            self.callback(progress)


def planned_jobs(plan: BackfillPlan) -> list[tuple[str, list[str]]]:
    """The backfill's runs in order: each job with its partition keys (none: unpartitioned)."""
    return [(REFERENCE_JOB, []), *((job, keys) for job, keys in
                                   ((HOURLY_JOB, plan.hourly_keys), (DAILY_JOB, plan.daily_keys))
                                   if keys)]


def later_hours_to_rerun(instance: DagsterInstance, run_id: str) -> list[str]:
    """Hours after an hourly run's range that kept events the run holds earlier copies of."""
    result = instance.fetch_materializations(AssetKey(FILTERED_EVENTS.asset), limit=1)
    for record in result.records:
        materialization = record.asset_materialization
        if record.run_id == run_id and materialization:
            listed = materialization.metadata.get(LATER_HOURS_TO_RERUN)
            return list(listed.value) if listed else []
    return []


def backfill(
    plan: BackfillPlan,
    instance: DagsterInstance,
    on_progress: Callable[[PartitionProgress], None] = lambda progress: None,
    on_run: Callable[[str, str], None] = lambda job, run_id: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Reference data, then every hourly stage as one run, then every daily stage as one run;
    `should_stop` is asked before each run."""
    handler = _ProgressForwarder(on_progress)
    progress_log.addHandler(handler)
    progress_log.setLevel(logging.INFO)
    run_ids = []
    try:
        with reaping_orphans(instance):
            for job_name, keys in planned_jobs(plan):
                if should_stop():
                    raise BackfillStopped(f"stopped before {job_name}")
                run_ids.append(run_job_range(instance, job_name, keys) if keys
                               else run_reference(instance))
                on_run(job_name, run_ids[-1])
    finally:
        progress_log.removeHandler(handler)
    return run_ids
