"""Batch jobs as a source: real shell commands through `telemetry job run` (a child process, as
an operator starts it), their console lines, their availability events, and the pipeline."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from telemetry_assets import live
from telemetry_assets.dashboard.server import create_app
from telemetry_assets.resources import TelemetryStore
from telemetry_cli.main import main
from telemetry_core.annotations import AnnotationStore
from telemetry_ingest.batch import console_lines, job_runs
from tests.helpers import serve_asgi

TELEMETRY = Path(sys.executable).with_name("telemetry")
SCENARIO = "checkout.quote"  # in tests.helpers' scenarios.csv
FAILING = "echo first; sleep 0.3; echo oops >&2; sleep 0.3; printf 'last, no newline'; exit 3"


def job_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TELEMETRY), "job", "run", *args], capture_output=True,
                          timeout=120, env=os.environ.copy())


def landed_events(platform) -> list[dict]:
    return [json.loads(line) for path in sorted(platform.settings.landing_dir.rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_a_failing_job_shows_its_output_records_its_lines_and_fails_its_event(platform):
    failed = job_run("--scenario", SCENARIO, "--", "sh", "-c", FAILING)
    # The operator's terminal gets the output as it was, and the job's exit status.
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout == b"first\nlast, no newline"
    assert failed.stderr.startswith(b"oops\n")
    assert b"failed (exit status 3)" in failed.stderr and b"3 console line(s)" in failed.stderr
    worked = job_run("--scenario", SCENARIO, "--partner", "contoso", "--", "sh", "-c",
                     "echo fine")
    assert worked.returncode == 0 and worked.stdout == b"fine\n"

    today = datetime.now(UTC).date()
    lake_dir = platform.settings.lake_dir
    runs = {row["exit_status"]: row for row in job_runs(lake_dir).read_days(
        today - timedelta(days=1), today)}
    assert sorted(runs) == [0, 3]
    assert runs[3]["command"] == shlex.join(["sh", "-c", FAILING])
    lines = [row for row in console_lines(lake_dir).read_days(today - timedelta(days=1), today)
             if row["run_id"] == runs[3]["run_id"]]
    assert [(r["line_number"], r["stream"], r["text"]) for r in lines] == [
        (1, "stdout", "first"), (2, "stderr", "oops"), (3, "stdout", "last, no newline")]
    times = [r["logged_at"] for r in lines]
    assert times == sorted(times) and times[2] - times[0] >= timedelta(seconds=0.5)
    assert runs[3]["started_at"] <= times[0] and times[-1] <= runs[3]["ended_at"]

    # One availability event per run: the exit status decides success, the duration latency.
    events = {event["id"]: event for event in landed_events(platform)}
    failed_event = events[f"job-{runs[3]['run_id']}"]["data"]["baseData"]
    assert failed_event["requestStatus"] >= 5 and failed_event["requestType"] == "Batch"
    assert failed_event["latencyMs"] >= 600
    assert events[f"job-{runs[0]['run_id']}"]["data"]["baseData"]["requestStatus"] < 5
    # The failure is noted on the scenario's charts.
    (noted,) = AnnotationStore(lake_dir).between(runs[3]["started_at"], runs[3]["ended_at"])
    assert (noted.kind, noted.scope_value) == ("job_failed", SCENARIO)

    # The pipeline publishes the job's scenario: 2 runs, 1 failed, provisionally until the hour
    # closes (the events are of the current hour).
    platform.run_reference()
    store = TelemetryStore()
    live.refresh(store.lake, store.settings, store.dedupe_horizon, datetime.now(UTC))
    shown = CliRunner().invoke(main, ["availability", "--date", "today"])
    assert shown.exit_code == 0, shown.output
    assert "PROVISIONAL" in shown.output
    (line,) = [line for line in shown.output.splitlines() if SCENARIO in line]
    assert " 2 " in f" {line} " and "50.000" in line

    # The dashboard lists the day's runs, each with its console's last lines.
    with serve_asgi(create_app()) as url, urllib.request.urlopen(f"{url}/?day={today}",
                                                                 timeout=60) as answer:
        page = answer.read().decode()
    assert f'data-run="{runs[3]["run_id"]}"' in page and f'data-run="{runs[0]["run_id"]}"' in page
    assert '<span class="stderr" data-line="2">' in page and " stderr oops</span>" in page

    found = CliRunner().invoke(main, ["job", "lines", "--date", "today", "--grep", "^oo"])
    assert found.exit_code == 0 and "stderr  oops" in found.output
    assert "first" not in found.output


def test_a_spooled_console_log_is_one_run_with_its_return_code(platform, tmp_path):
    spool = tmp_path / "JOB01234.txt"
    spool.write_text("IEF142I NIGHTLY STEP1 - STEP WAS EXECUTED - COND CODE 0000\n"
                     "IEF142I NIGHTLY STEP2 - STEP WAS EXECUTED - COND CODE 0012\n")
    done = CliRunner().invoke(main, [
        "job", "ingest", "--scenario", SCENARIO, "--file", str(spool),
        "--started", "2026-11-20T01:00:00Z", "--ended", "2026-11-20T01:30:00Z"])
    assert done.exit_code == 0, done.output
    assert "exit status 12, 2 line(s)" in done.output
    (run,) = job_runs(platform.settings.lake_dir).read_days(datetime(2026, 11, 20).date(),
                                                          datetime(2026, 11, 20).date())
    assert (run["started_at"], run["ended_at"], run["succeeded"]) == (
        datetime(2026, 11, 20, 1), datetime(2026, 11, 20, 1, 30), False)
    # The same log ingested again is the same run: one event, one row, its lines once.
    again = CliRunner().invoke(main, [
        "job", "ingest", "--scenario", SCENARIO, "--file", str(spool),
        "--started", "2026-11-20T01:00:00Z", "--ended", "2026-11-20T01:30:00Z"])
    assert again.exit_code == 0 and run["run_id"] in again.output
    assert len(console_lines(platform.settings.lake_dir).read_day(datetime(2026, 11, 20).date())
               ) == 2
    (event,) = landed_events(platform)
    assert event["time"] == "2026-11-20T01:30:00.000Z"
    assert event["data"]["baseData"]["latencyMs"] == 30 * 60 * 1000
    # A closed day: the exact pipeline publishes the run as one failed request.
    platform.run_whole_day("2026-11-20")
    (published,) = platform.query("select total_requests, failed_requests, availability_pct "
                                  f"from published.scenario_daily where scenario_id = '{SCENARIO}'")
    assert published == {"total_requests": 1, "failed_requests": 1, "availability_pct": 0.0}

    undated = tmp_path / "no-code.txt"
    undated.write_text("all done\n")
    refused = CliRunner().invoke(main, ["job", "ingest", "--scenario", SCENARIO,
                                        "--file", str(undated)])
    assert refused.exit_code == 2 and "give --exit-status" in refused.output


def test_an_unknown_scenario_runs_nothing(platform, tmp_path):
    marker = tmp_path / "ran"
    refused = job_run("--scenario", "no.such.scenario", "--", "touch", str(marker))
    assert refused.returncode == 2 and b"unknown scenario 'no.such.scenario'" in refused.stderr
    assert b"Traceback" not in refused.stderr
    assert not marker.exists() and landed_events(platform) == []


def test_a_command_that_cannot_start_is_a_failed_run(platform):
    missing = job_run("--scenario", SCENARIO, "--", "/nonexistent/program")
    assert missing.returncode == 127 and b"No such file" in missing.stderr
    (event,) = landed_events(platform)
    assert event["data"]["baseData"]["requestStatus"] >= 5


def _ignoring_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@pytest.mark.parametrize("started_by", ["a shell", "a scheduler that ignores SIGTERM"])
def test_a_job_stopped_by_its_scheduler_is_recorded_without_waiting_for_what_it_left(
        platform, started_by):
    # A scheduler stops the job with SIGTERM; the command leaves a background process that
    # holds its output open. A process started with SIGTERM ignored passes that on to what it
    # starts, unless it handles the signal itself.
    job = subprocess.Popen(
        [str(TELEMETRY), "job", "run", "--scenario", SCENARIO, "--", "sh", "-c",
         "sleep 31.5 & echo started; sleep 32.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
        preexec_fn=_ignoring_sigterm if "ignores" in started_by else None)
    try:
        assert job.stdout.readline() == b"started\n"
        stopped = time.monotonic()
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=30) == 128 + signal.SIGTERM
        assert time.monotonic() - stopped < 10
    finally:
        subprocess.run(["pkill", "-f", "sleep 3[12].5"], check=False)
        job.stdout.close()
        job.stderr.close()
    today = datetime.now(UTC).date()
    (run,) = job_runs(platform.settings.lake_dir).read_days(today - timedelta(days=1), today)
    assert run["exit_status"] == 143 and not run["succeeded"]
    assert [row["text"] for row in console_lines(platform.settings.lake_dir).read_days(
        today - timedelta(days=1), today)] == ["started"]
    (event,) = landed_events(platform)
    assert event["data"]["baseData"]["requestStatus"] >= 5
