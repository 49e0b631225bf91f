"""A backfill killed with SIGKILL leaves no slot behind that blocks the next one, and a
backfill told to stop (SIGTERM, Ctrl-C) stops cleanly and says what it left undone."""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus, RunsFilter

from telemetry_assets.stage import COMPUTE_POOL
from telemetry_synth import generate_landing
from tests.helpers import REPO

START = datetime(2026, 11, 18, tzinfo=UTC)
END = datetime(2026, 11, 18, 3, tzinfo=UTC)
CLI = "from telemetry_cli.main import main; main()"


@pytest.fixture
def home(platform):
    """The platform with the committed instance settings (pool of 2 slots) and busy hours."""
    shutil.copy(REPO / "deploy" / "dagster.yaml",
                Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")
    generate_landing(platform.settings.landing_dir, platform.settings.reference_dir, START, END,
                     events_per_hour=100_000, seed=3, files_per_hour=2)
    return platform


def start_backfill(end: datetime = END) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "backfill", "--start", f"{START:%Y-%m-%dT%H:%M}",
         "--end", f"{end:%Y-%m-%dT%H:%M}"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )


def holders(instance) -> set[str]:
    """Runs holding a slot of the compute pool."""
    info = instance.event_log_storage.get_concurrency_info(COMPUTE_POOL)
    return {slot.run_id for slot in info.claimed_slots}


def kill_while_holding_a_slot(instance) -> str:
    process = start_backfill()
    deadline = time.monotonic() + 120
    held = set()
    while not held:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the backfill never claimed a slot"
        held = holders(instance)
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=10)
    (run_id,) = held
    return run_id


def test_two_sigkilled_backfills_do_not_block_the_next_one(home):
    instance = home.instance
    killed = {kill_while_holding_a_slot(instance)}
    killed.add(kill_while_holding_a_slot(instance))
    assert holders(instance) >= killed  # both slots of the pool held by dead processes
    survivor = start_backfill()
    try:
        output, _ = survivor.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        survivor.kill()
        pytest.fail("the backfill after two killed ones did not finish in 300 s")
    assert survivor.returncode == 0, output
    for run_id in killed:
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.FAILURE
    assert not holders(instance) & killed
    (hours,) = home.query("select count(distinct date_trunc('hour', minute)) as n "
                          "from aggregate.minute_aggregate")
    assert hours["n"] == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_backfill_told_to_stop_stops_and_says_what_is_left(home, signum):
    # The rest of the day, quiet: the backfill of the whole day has a daily run after the
    # hourly one it is stopped in.
    generate_landing(home.settings.landing_dir, home.settings.reference_dir, END,
                     START + timedelta(days=1), events_per_hour=100, seed=4)
    process = start_backfill(START + timedelta(days=1))
    deadline = time.monotonic() + 120
    while not holders(home.instance):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # inside the step's work, not between steps
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, output
    assert "Traceback" not in output
    # Interrupted in its step, or let finish: either way the daily run never starts.
    assert "stopped by" in output and "not done: " in output and "daily_pipeline" in output
    runs = home.instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    assert runs == []  # nothing left running, nothing holding a slot
    assert not holders(home.instance)
