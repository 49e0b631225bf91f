"""Runs whose process is gone are failed and their pool slots freed; live ones are left alone."""

import os
import socket
import subprocess
import sys

from dagster import DagsterRun, DagsterRunStatus, SkipReason, build_sensor_context

from telemetry_assets.automation.orphaned_runs import orphaned_runs, reap_orphaned_runs
from telemetry_assets.jobs import HOST_TAG, PID_TAG
from telemetry_assets.stage import COMPUTE_POOL


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def started_run(instance, pid: int, host: str | None = None) -> str:
    run = DagsterRun(job_name="hourly_pipeline", status=DagsterRunStatus.STARTED,
                     tags={HOST_TAG: host or socket.gethostname(), PID_TAG: str(pid)})
    instance.add_run(run)
    instance.event_log_storage.set_concurrency_slots(COMPUTE_POOL, 3)
    claim = instance.event_log_storage.claim_concurrency_slot(COMPUTE_POOL, run.run_id, "step")
    assert claim.is_claimed
    return run.run_id


def holders(instance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(COMPUTE_POOL)
    return {slot.run_id for slot in info.claimed_slots}


def test_a_run_whose_process_is_gone_is_failed_and_frees_its_slot(platform):
    instance = platform.instance
    orphan = started_run(instance, dead_pid())
    alive = started_run(instance, os.getpid())
    elsewhere = started_run(instance, dead_pid(), host="another-host")
    assert reap_orphaned_runs(instance) == [orphan]
    assert instance.get_run_by_id(orphan).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED
    # Another host's processes cannot be seen from here: its runs are its own to judge.
    assert instance.get_run_by_id(elsewhere).status == DagsterRunStatus.STARTED
    assert holders(instance) == {alive, elsewhere}
    assert reap_orphaned_runs(instance) == []


def test_the_sensor_reaps_under_the_daemon(platform):
    orphan = started_run(platform.instance, dead_pid())
    result = orphaned_runs(build_sensor_context(instance=platform.instance))
    assert isinstance(result, SkipReason) and orphan in result.skip_message
    assert platform.instance.get_run_by_id(orphan).status == DagsterRunStatus.FAILURE
