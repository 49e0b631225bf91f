"""Runs whose process is gone are ended, and their pool slots freed, without a person.

A run executed in a `telemetry` process (a backfill, the demo) is tagged with that process's
host and pid. If the process is killed (SIGKILL, OOM, a lost machine), Dagster never hears
that the run ended: it stays STARTED and keeps its `telemetry_compute` slots, and every later
step of every run waits for them. Such runs are failed with a message saying why, and their
slots freed: by each `telemetry` command before it runs anything and while it waits, and by
this sensor under the daemon.
"""

import os
import socket

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from telemetry_assets.jobs import HOST_TAG, LAUNCHED_STATUSES, PID_TAG


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def reap_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Fail this host's unfinished runs whose process is gone and free their slots; their ids."""
    host = socket.gethostname()
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=list(LAUNCHED_STATUSES),
                                                      tags={HOST_TAG: host})):
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run, f"process {pid} on {host} that executed this run is gone (killed or crashed); "
            "its pool slots are freed. Re-run the same range: a re-run replaces its partitions.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


@sensor(
    name="orphaned_runs",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails runs whose `telemetry` process is gone (killed mid-run) and frees their "
    "pool slots, so that no later run waits for them for ever.",
)
def orphaned_runs(context: SensorEvaluationContext):
    reaped = reap_orphaned_runs(context.instance)
    return SkipReason(f"ended {len(reaped)} orphaned runs: {', '.join(reaped)}" if reaped
                      else "no orphaned run")
