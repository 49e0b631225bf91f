"""Backfills through the `telemetry` CLI: 48 hours in three runs, beside a scheduled run and a
reader of the published tables, with the figures of per-hour runs."""

import math
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import build_schedule_context

from telemetry_assets.definitions import defs
from telemetry_assets.resources import RESOURCES
from telemetry_cli.launcher import plan_backfill
from telemetry_synth import generate_landing
from tests.helpers import REPO
from tests.platform import run_requested

# 48 generated hours through `telemetry backfill`, beside a scheduled hour.
pytestmark = pytest.mark.minutes(1)

START = datetime(2026, 11, 18, tzinfo=UTC)
REPOSITORY = defs.get_repository_def()
CLI = "from telemetry_cli.main import main; main()"
SNAPSHOT_TABLES = ("published.scenario_daily", "published.scenario_partner_daily",
                   "published.scenario_minute", "aggregate.minute_aggregate",
                   "aggregate.minute_latency")


def backfill(start: datetime, end: datetime) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "backfill", "--start", f"{start:%Y-%m-%dT%H:%M}",
         "--end", f"{end:%Y-%m-%dT%H:%M}"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )


def read_published(platform) -> float | None:
    """Seconds to open the warehouse and read a published table; None before it exists."""
    started = time.perf_counter()
    try:
        with platform.lake.warehouse(read_only=True) as con:
            con.sql("select count(*) from published.scenario_daily").fetchall()
    except (FileNotFoundError, duckdb.CatalogException):
        return None
    return time.perf_counter() - started


def snapshot(platform) -> dict[str, list[tuple]]:
    with platform.lake.warehouse() as con:
        return {table: con.sql(f"select * from {table} order by all").fetchall()
                for table in SNAPSHOT_TABLES}


def same_figures(old: tuple, new: tuple) -> bool:
    """Keys and counts exactly; float sums up to DuckDB's parallel summation order."""
    return all(
        math.isclose(a, b, rel_tol=1e-12) if isinstance(a, float) else a == b
        for a, b in zip(old, new, strict=True)
    )


def test_48_hours_backfill_as_three_runs_beside_a_scheduled_hour(platform):
    home = Path(os.environ["DAGSTER_HOME"])
    # The committed instance settings (run queue, pool limits) for the CLI process.
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    settings = platform.settings
    summary = generate_landing(settings.landing_dir, settings.reference_dir, START,
                               START + timedelta(days=2), events_per_hour=150, seed=5,
                               files_per_hour=2)
    hour_after = generate_landing(settings.landing_dir, settings.reference_dir,
                                  datetime(2026, 11, 20, 5, tzinfo=UTC),
                                  datetime(2026, 11, 20, 6, tzinfo=UTC), events_per_hour=150,
                                  seed=6, files_per_hour=1)

    process = backfill(START, START + timedelta(days=2))
    try:
        # Meanwhile the hourly schedule's run of an hour after the range, in this process.
        platform.run_reference()
        with build_schedule_context(instance=platform.instance, repository_def=REPOSITORY,
                                    resources=RESOURCES,
                                    scheduled_execution_time=datetime(2026, 11, 20, 6, 15,
                                                                      tzinfo=UTC)) as tick:
            (request,) = REPOSITORY.get_schedule_def("hourly_pipeline_schedule").evaluate_tick(
                tick).run_requests
        scheduled = platform.instance.get_run_by_id(
            run_requested(platform.instance, request, "hourly_pipeline"))
        waits = []
        while process.poll() is None:
            waits.append(read_published(platform))
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.communicate()[0]
    assert process.returncode == 0, output
    assert "48 hours, 2 days" in output and "with 3 runs" in output
    # Readers were served throughout: never held up for the length of a run.
    served = [wait for wait in waits if wait is not None]
    assert served and max(served) < 5.0, max(served or [0])

    launched = dict(re.findall(r"(\w+): run ([0-9a-f-]{36}) succeeded", output))
    assert sorted(launched) == ["daily_pipeline", "hourly_pipeline", "reference_data"]
    backfill_runs = [platform.instance.get_run_by_id(run_id) for run_id in launched.values()]
    # Besides the CLI's three, only this test's reference run and the scheduled hour.
    assert len(platform.instance.get_runs()) == 5
    (hourly,) = [run for run in backfill_runs if run.job_name == "hourly_pipeline"]
    assert (hourly.tags["dagster/asset_partition_range_start"],
            hourly.tags["dagster/asset_partition_range_end"]) == (
        "2026-11-18-00:00", "2026-11-19-23:00")
    assert all(run.is_success for run in backfill_runs) and scheduled.is_success
    (raw,) = platform.query("select count(*) as events from raw.raw_events")
    assert raw["events"] == summary.events_written + hour_after.events_written

    (kept,) = platform.query(
        "select sum(events) as events from staging.event_outcomes "
        "where outcome = 'kept' and hour < timestamp '2026-11-20'")
    (published,) = platform.query(
        "select sum(total_requests) as requests from curated.validated")
    assert published["requests"] == kept["events"]

    # The hours on either side of midnight and a day, each run as its own run, give the same
    # figures as the range runs did.
    before = snapshot(platform)
    platform.run_hours("2026-11-18-23:00")
    platform.run_hours("2026-11-19-00:00")
    platform.run_days("2026-11-19")
    after = snapshot(platform)
    for table, rows in before.items():
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, after[table], strict=True):
            assert same_figures(old, new), (table, old, new)


@pytest.mark.parametrize(
    ("start", "end", "hours", "days", "partial"),
    [
        ((2026, 11, 18), (2026, 11, 20), 48, ["2026-11-18", "2026-11-19"], []),
        ((2026, 11, 18, 10), (2026, 11, 18, 12), 2, [], [("2026-11-18", 2)]),
        ((2026, 11, 18, 23), (2026, 11, 19, 1), 2, [], [("2026-11-18", 1), ("2026-11-19", 1)]),
        ((2026, 11, 17, 22), (2026, 11, 19, 2), 28, ["2026-11-18"],
         [("2026-11-17", 2), ("2026-11-19", 2)]),
        ((2026, 11, 1), (2026, 12, 1), 720, None, []),
    ],
)
def test_a_range_runs_its_hours_and_the_days_it_covers_whole(start, end, hours, days, partial):
    plan = plan_backfill(datetime(*start, tzinfo=UTC), datetime(*end, tzinfo=UTC),
                         now=datetime(2026, 12, 2, tzinfo=UTC))
    assert len(plan.hourly_keys) == hours
    assert plan.daily_keys == (
        [f"2026-11-{day:02d}" for day in range(1, 31)] if days is None else days)
    assert [(day.key, day.hours) for day in plan.partial_days] == partial


def test_a_day_in_part_says_how_to_run_it_whole_or_that_it_is_not_over():
    plan = plan_backfill(datetime(2026, 12, 1, 20, tzinfo=UTC),
                         datetime(2026, 12, 2, 4, tzinfo=UTC),
                         now=datetime(2026, 12, 2, 5, 30, tzinfo=UTC))
    assert plan.daily_keys == []
    assert [day.reason() for day in plan.partial_days] == [
        "2026-12-01: only 4 of its 24 hours are in this range; run the day with "
        "--start 2026-12-01 --end 2026-12-02",
        "2026-12-02: only 4 of its 24 hours are in this range, and the day is not over yet "
        "(its daily schedule runs it then)",
    ]
