"""The whole Spark cluster lost mid-run (master, worker and executors SIGKILLed): the backfill
fails within `spark.network.timeout` with a message saying so, instead of waiting forever for
executors that cannot come, and the re-run counts every landing line once."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from telemetry_assets.tables import RAW_EVENTS
from telemetry_synth import generate_landing
from tests.helpers import REPO
from tests.spark.cluster import SparkCluster
from tests.spark.conftest import QUICK_JVM
from tests.spark.test_parity import HOURLY_STAGES, differences, engine_platform

pytestmark = [pytest.mark.spark, pytest.mark.minutes(1.5)]

START = datetime(2026, 11, 20, tzinfo=UTC)
HOURS = 3
# SIGUSR1 prints the backfill's Python stacks: what a hung run waits on.
CLI = ("import faulthandler, signal; faulthandler.register(signal.SIGUSR1); "
       "from telemetry_cli.main import main; main()")
# Short, so that the test waits seconds rather than Spark's default two minutes.
NETWORK_TIMEOUT_S = 10


def backfill(**env: str) -> subprocess.Popen:
    end = START + timedelta(hours=HOURS)
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "backfill", "--start", f"{START:%Y-%m-%dT%H:%M}",
         "--end", f"{end:%Y-%m-%dT%H:%M}"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def test_a_lost_cluster_fails_the_run_promptly_and_the_rerun_counts_every_line_once(
        platform, tmp_path):
    settings = platform.settings
    generate_landing(settings.landing_dir, settings.reference_dir, START,
                     START + timedelta(hours=HOURS), events_per_hour=500, seed=11,
                     files_per_hour=1, malformed_rate=0.01)
    conf = tmp_path / "spark-conf"
    conf.mkdir()
    # Spark's own configuration file, read by the driver it launches: where a user sets it too.
    (conf / "spark-defaults.conf").write_text(
        f"spark.network.timeout {NETWORK_TIMEOUT_S}s\n"
        # Both must stay below the timeout.
        "spark.network.timeoutInterval 5s\n"
        "spark.executor.heartbeatInterval 2s\n")
    cluster = SparkCluster(tmp_path / "cluster", workers=1)
    cluster.start()
    try:
        running = backfill(TELEMETRY_ENGINE="spark", TELEMETRY_SPARK_MASTER=cluster.master_url,
                           SPARK_CONF_DIR=str(conf), JAVA_TOOL_OPTIONS=QUICK_JVM)
        raw = settings.lake_dir / RAW_EVENTS.schema / RAW_EVENTS.name
        # Only a guard against a start that hangs: a loaded machine takes minutes to get here.
        deadline = time.monotonic() + 300
        while not list(raw.glob("*/data.parquet")):
            assert running.poll() is None, running.stdout.read()
            if time.monotonic() > deadline:
                running.kill()
                pytest.fail(f"no raw partition written on the cluster: {running.stdout.read()}")
            time.sleep(0.2)
        cluster.kill_all()
        lost_at = time.monotonic()
        try:
            output, _ = running.communicate(timeout=NETWORK_TIMEOUT_S * 6 + 60)
        except subprocess.TimeoutExpired:
            running.send_signal(signal.SIGUSR1)
            time.sleep(2)
            running.kill()
            # faulthandler prints the other threads first: the one blocked is among them.
            dump = running.communicate()[0]
            stacks = dump[min((i for i in (dump.find("Thread 0x"), dump.find("Current thread"))
                              if i >= 0), default=0):]
            pytest.fail(f"the backfill still waits for its lost cluster: {stacks}")
        failed_after = time.monotonic() - lost_at
    finally:
        cluster.stop()

    assert running.returncode != 0, output
    assert f"the Spark cluster at {cluster.master_url} is gone" in output, output
    assert "Traceback" not in output, output
    assert failed_after >= NETWORK_TIMEOUT_S, failed_after

    rerun = backfill(TELEMETRY_ENGINE="duckdb")
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    # The same hours run once, on a platform that never saw the cluster.
    with engine_platform(tmp_path / "untroubled", settings.landing_dir) as untroubled:
        untroubled.run_reference()
        untroubled.run_hours(*[f"{START + timedelta(hours=h):%Y-%m-%d-%H}:00"
                               for h in range(HOURS)])
        expected = untroubled.settings.lake_dir
    problems = [line for table in HOURLY_STAGES
                for line in differences(expected, settings.lake_dir, table)]
    assert problems == []
