"""The whole pipeline through Dagster on a temp warehouse: figures, re-runs, concurrency."""

import os
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import datetime, timedelta

import duckdb
import pytest

from telemetry_assets.tables import MINUTE_AGGREGATE
from telemetry_cli.launcher import RunFailed
from telemetry_core.annotations import AnnotationStore
from telemetry_core.sql import compute_connection
from tests.events import wire_event
from tests.helpers import DAY, same_rows, write_landing

DAY_KEY = "2026-11-20"
ALL_HOURS = [f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)]
PUBLISHED = ("published.scenario_daily", "published.scenario_partner_daily",
             "published.scenario_minute")


def land_literal_day(landing_dir) -> None:
    """A day with known answers: checkout.quote 8/10 ok, search.query 3/4 ok, and noise."""
    at = DAY.replace(hour=10)
    quote = [wire_event(f"q{i}", time=f"2026-11-20T10:{i:02d}:00.000Z", latency=10.0 * (i + 1),
                        status=7 if i in (3, 8) else 0) for i in range(10)]
    search = [wire_event(f"s{i}", time="2026-11-20T22:59:59.999Z", operation="RunSearch",
                         cc="", caller="fabrikam", status=[0, 4, 5, 1][i], latency=50.0)
              for i in range(4)]
    noise = [
        wire_event("q0", time="2026-11-20T10:00:00.000Z"),  # duplicate of q0
        wire_event("dev1", environment="dev"),
        wire_event("test1", is_test="true"),
        wire_event("type1", base_type="Ms.Qos.OutgoingServiceRequest"),
        wire_event("lost1", cc="", operation="Unlisted"),
        wire_event("mystery1", cc="ms.b.tel.scenario=mystery.flow;ms.b.tel.partner=contoso"),
        wire_event("newpartner", cc="ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=initech",
                   status=0, latency=10.0),
        "{broken",
    ]
    write_landing(landing_dir, at, "batch-1", quote[:5] + noise)
    write_landing(landing_dir, at, "batch-2", quote[5:], compress=True)
    write_landing(landing_dir, DAY.replace(hour=22), "late", search)


def run_day(platform) -> None:
    platform.run_reference()
    platform.run_hours(*ALL_HOURS)
    platform.run_days(DAY_KEY)


def published_snapshot(platform) -> dict[str, list[tuple]]:
    with platform.lake.warehouse() as con:
        return {table: con.sql(f"select * from {table} order by all").fetchall()
                for table in PUBLISHED}


def test_published_figures_match_hand_computed_values(platform):
    land_literal_day(platform.settings.landing_dir)
    run_day(platform)

    daily = {row["scenario_id"]: row for row in platform.query(
        "select * from published.scenario_daily")}
    assert set(daily) == {"checkout.quote", "search.query"}  # mystery.flow is held back
    quote = daily["checkout.quote"]
    assert (quote["total_requests"], quote["successful_requests"], quote["failed_requests"]) == (
        11, 9, 2)
    assert quote["availability_pct"] == pytest.approx(100 * 9 / 11)
    assert quote["avg_latency_ms"] == pytest.approx((550.0 + 10.0) / 11)
    assert quote["scenario_name"] == "Purchase quote"
    assert quote["slo_target_pct"] == 99.5 and quote["slo_met"] is False
    assert quote["p95_latency_ms"] == pytest.approx(100.0, rel=0.01)
    search = daily["search.query"]
    assert (search["total_requests"], search["successful_requests"]) == (4, 3)
    assert search["availability_pct"] == 75.0

    partners = {(row["scenario_id"], row["partner_id"]): row for row in platform.query(
        "select * from published.scenario_partner_daily")}
    assert set(partners) == {("checkout.quote", "contoso"), ("checkout.quote", "initech"),
                             ("search.query", "fabrikam")}
    assert partners[("checkout.quote", "initech")]["partner_name"] is None
    assert partners[("search.query", "fabrikam")]["partner_name"] == "Fabrikam"

    minutes = platform.query("select * from published.scenario_minute "
                             "where scenario_id = 'search.query'")
    assert [(str(row["minute"]), row["total_requests"]) for row in minutes] == [
        ("2026-11-20 22:59:00", 4)]

    held = platform.query("select scenario_id, hold_reason, total_requests "
                          "from curated.validated where hold_reason is not null")
    assert held == [{"scenario_id": "mystery.flow", "hold_reason": "unknown scenario",
                     "total_requests": 1}]
    outcomes = {row["outcome"]: row["events"] for row in platform.query(
        "select outcome, sum(events) as events from staging.event_outcomes group by all")}
    assert outcomes == {"kept": 16, "duplicate": 1, "non_prod": 1, "test_traffic": 1,
                        "wrong_type": 1, "unattributed": 1}
    (rejected,) = platform.query("select count(*) as lines from quarantine.rejected_events")
    assert rejected["lines"] == 1
    # The day's charts say so: the scenario held back, and a quarantined share above 1 %.
    day = datetime(2026, 11, 20)
    noted = {a.kind: a for a in AnnotationStore(platform.settings.lake_dir).between(
        day, day + timedelta(days=1))}
    assert set(noted) == {"held_back", "quarantine_spike"}
    assert noted["held_back"].text.startswith(
        "2026-11-20: 1 requests of scenario 'mystery.flow' held back")
    assert (noted["held_back"].starts_at, noted["held_back"].ends_at) == (day, None)
    assert noted["quarantine_spike"].text.startswith("2026-11-20: 1 of ")
    run_day(platform)  # the same figures again: nothing new to note
    assert len(AnnotationStore(platform.settings.lake_dir).between(
        day, day + timedelta(days=1))) == 2


def test_rerunning_a_partition_gives_identical_figures(platform):
    land_literal_day(platform.settings.landing_dir)
    run_day(platform)
    first = published_snapshot(platform)
    platform.run_hours("2026-11-20-10:00")
    platform.run_days(DAY_KEY)
    run_day(platform)
    assert same_rows(published_snapshot(platform), first)
    assert first["published.scenario_daily"]
    # Every stage ran in this process's shared engine and left nothing behind in it for the
    # next session to trip over (a persistent view of one partition read by another).
    with closing(compute_connection()) as con:
        assert con.execute(
            "select count(*) from duckdb_tables() where not temporary").fetchall() == [(0,)]
        assert con.execute("select count(*) from duckdb_views() "
                           "where not internal and not temporary").fetchall() == [(0,)]


def test_range_run_equals_one_run_per_partition(platform, tmp_path):
    land_literal_day(platform.settings.landing_dir)
    hours = ["2026-11-20-09:00", "2026-11-20-10:00", "2026-11-20-11:00"]
    platform.run_reference()
    platform.run_hours(*hours)
    ranged = platform.query("select * from aggregate.minute_aggregate order by all")
    platform.lake.root.rename(tmp_path / "lake-from-range-run")
    platform.run_reference()
    for key in hours:
        platform.run_hours(key)
    assert same_rows(platform.query("select * from aggregate.minute_aggregate order by all"),
                     ranged)
    assert sum(row["total_requests"] for row in ranged) == 12


def test_daily_run_without_its_hours_fails_clearly(platform):
    platform.run_reference()
    platform.run_hours("2026-11-20-10:00")
    with pytest.raises(RunFailed, match=r"minute_(aggregate|latency) has not been materialized for "
                                        r"2026-11-20T00"):
        platform.run_days(DAY_KEY)


def test_interrupted_write_leaves_the_previous_partition_intact(platform):
    land_literal_day(platform.settings.landing_dir)
    run_day(platform)
    lake = platform.lake
    hour = DAY.replace(hour=10)
    path = lake.partition_path(MINUTE_AGGREGATE, hour)
    before = path.read_bytes()
    con = duckdb.connect()
    failing = con.sql("select 1 as x union all select error('disk vanished') as x")
    with pytest.raises(duckdb.Error, match="disk vanished"):
        lake.write(MINUTE_AGGREGATE, hour, failing)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]


CONCURRENT_RUN = textwrap.dedent("""
    import sys
    from dagster import DagsterInstance
    from telemetry_cli.launcher import run_job_range
    with DagsterInstance.get() as instance:
        run_job_range(instance, "hourly_pipeline", [sys.argv[1]])
""")


def test_two_hours_in_two_processes_at_once(platform):
    landing = platform.settings.landing_dir
    for hour in (3, 4):
        events = [wire_event(f"h{hour}-{i}", time=f"2026-11-20T{hour:02d}:{i % 60:02d}:00.000Z",
                             status=0 if i % 4 else 9) for i in range(4000)]
        write_landing(landing, DAY.replace(hour=hour), "bulk", events)
    platform.run_reference()
    platform.run_hours(*[key for key in ALL_HOURS if key[-5:-3] not in ("03", "04")])
    processes = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_RUN, f"{DAY_KEY}-{hour:02d}:00"],
                         env=os.environ.copy(), stderr=subprocess.PIPE, text=True)
        for hour in (3, 4)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-3000:]
    platform.run_days(DAY_KEY)
    (totals,) = platform.query(
        "select sum(total_requests) as total, sum(failed_requests) as failed "
        "from published.scenario_daily")
    assert (totals["total"], totals["failed"]) == (8000, 2000)
    hours = platform.query(
        "select hour(minute) as hour, sum(total_requests) as total "
        "from aggregate.minute_aggregate group by all order by hour")
    assert hours == [{"hour": 3, "total": 4000}, {"hour": 4, "total": 4000}]


def test_a_reader_holding_the_warehouse_blocks_no_run_and_sees_its_result(platform):
    land_literal_day(platform.settings.landing_dir)
    run_day(platform)
    reader = duckdb.connect(str(platform.lake.warehouse_path), read_only=True)
    try:
        before = reader.sql("select count(*) from quarantine.rejected_events").fetchall()
        write_landing(platform.settings.landing_dir, DAY.replace(hour=10), "more", ["{bad"])
        process = subprocess.run(
            [sys.executable, "-c", CONCURRENT_RUN, "2026-11-20-10:00"],
            env=os.environ.copy(), capture_output=True, text=True, timeout=240,
        )
        assert process.returncode == 0, process.stderr[-3000:]
        after = reader.sql("select count(*) from quarantine.rejected_events").fetchall()
    finally:
        reader.close()
    assert (before, after) == ([(1,)], [(2,)])
