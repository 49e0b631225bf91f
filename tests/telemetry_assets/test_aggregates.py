"""Minute and daily aggregates on literal rows: edges, merging, weighted means, percentiles."""

import math
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from dagster import TimeWindow

from telemetry_core.sql import (
    LATENCY_GROWTH,
    ZERO_LATENCY_BUCKET,
    compute_connection,
    utc_naive,
    window_params,
)
from tests.helpers import DAY, HOUR_10, rows, run_stage

WHOLE_DAY = TimeWindow(DAY, DAY + timedelta(days=1))
KEYS = {"scenario_id": "s", "partner_id": "p", "request_type": "GET", "cloud_environment": "prod"}


def filtered(*events: tuple[str, float | None, bool]) -> pd.DataFrame:
    """Kept events as (time, latency_ms, is_success) on one set of grain keys."""
    frame = pd.DataFrame(
        [{**KEYS, "event_time": pd.Timestamp(time), "latency_ms": latency, "is_success": ok}
         for time, latency, ok in events]
    )
    frame["minute"] = frame["event_time"].dt.floor("min")
    frame["latency_ms"] = frame["latency_ms"].astype("float64")
    return frame


def run_day(filtered_events: pd.DataFrame, window: TimeWindow = WHOLE_DAY):
    """minute stages per hour of the day, then the daily stages, all in one engine."""
    con = compute_connection()
    con.register("filtered_events", filtered_events)
    run_stage(con, "aggregate", "minute_aggregate", window)
    run_stage(con, "aggregate", "minute_latency", window)
    run_stage(con, "aggregate", "daily_latency", window)
    run_stage(con, "aggregate", "daily_aggregate", window)
    con.execute("create temp table scenarios as select 's' as scenario_id, 'S' as scenario_name, "
                "'svc' as service, 99.0 as slo_target_pct, 'ST-1' as stid")
    con.execute("create temp table customers as "
                "select 'p' as partner_id, 'P' as partner_name, 'gold' as tier")
    for name in ("translated", "validated", "latency_percentiles"):
        run_stage(con, "curated", name, window)
    return con


def detail_percentiles(con) -> dict:
    """The day's percentiles at the daily_aggregate grain (the literal rows have one key)."""
    (day,) = rows(con, "select * from latency_percentiles where grain = 'detail'")
    return day


def test_minute_aggregate_counts_within_the_half_open_window():
    events = filtered(
        ("2026-11-20 09:59:59.999", 5.0, True),
        ("2026-11-20 10:00:00.000", 10.0, True),
        ("2026-11-20 10:00:30.000", 20.0, False),
        ("2026-11-20 10:59:59.999", 30.0, True),
        ("2026-11-20 11:00:00.000", 40.0, True),
    )
    with closing(compute_connection()) as con:
        con.register("filtered_events", events)
        run_stage(con, "aggregate", "minute_aggregate", HOUR_10)
        result = rows(con, "select * from minute_aggregate order by minute")
    assert [str(row["minute"]) for row in result] == ["2026-11-20 10:00:00", "2026-11-20 10:59:00"]
    first, last = result
    assert (first["total_requests"], first["successful_requests"], first["failed_requests"]) == (
        2, 1, 1)
    assert first["avg_latency_ms"] == 15.0
    assert (last["total_requests"], last["latency_sum_ms"], last["latency_count"]) == (1, 30.0, 1)


def test_minute_latency_buckets_are_log_spaced_and_zero_has_its_own():
    events = filtered(
        ("2026-11-20 10:00:01", 0.0, True),
        ("2026-11-20 10:00:02", 100.0, True),
        ("2026-11-20 10:00:03", 100.5, True),
        ("2026-11-20 10:00:04", None, False),
    )
    with closing(compute_connection()) as con:
        con.register("filtered_events", events)
        run_stage(con, "aggregate", "minute_latency", HOUR_10)
        buckets = {row["latency_bucket"]: row["requests"]
                   for row in rows(con, "select * from minute_latency")}
    expected = math.floor(math.log(100.0) / math.log(LATENCY_GROWTH))
    assert buckets == {ZERO_LATENCY_BUCKET: 1, expected: 2}


def test_daily_average_latency_is_request_weighted():
    # One slow request in a quiet minute, 99 fast ones in a busy minute: the mean of minute
    # means would be (1000 + 10) / 2 = 505 ms; the request-weighted mean is 19.9 ms.
    events = filtered(
        ("2026-11-20 03:00:00", 1000.0, True),
        *[(f"2026-11-20 15:30:{second:02d}", 10.0, second % 11 != 0) for second in range(59)],
        *[(f"2026-11-20 15:31:{second:02d}", 10.0, True) for second in range(40)],
    )
    with closing(run_day(events)) as con:
        (day,) = rows(con, "select * from daily_aggregate")
    assert day["total_requests"] == 100
    assert day["successful_requests"] + day["failed_requests"] == 100
    assert day["failed_requests"] == 6
    assert day["avg_latency_ms"] == pytest.approx(19.9)


def test_daily_window_edges():
    events = filtered(
        ("2026-11-19 23:59:59.999", 1.0, True),
        ("2026-11-20 00:00:00.000", 1.0, True),
        ("2026-11-20 23:59:59.999", 1.0, False),
        ("2026-11-21 00:00:00.000", 1.0, True),
    )
    with closing(run_day(events)) as con:
        (day,) = rows(con, "select * from daily_aggregate")
        (latency,) = rows(con, "select sum(requests) as requests from daily_latency")
    assert str(day["date"]) == "2026-11-20"
    assert (day["total_requests"], day["failed_requests"]) == (2, 1)
    assert latency["requests"] == 2


def exact_nearest_rank(values: np.ndarray, pct: int) -> float:
    ordered = np.sort(values)
    return float(ordered[math.ceil(pct * len(ordered) / 100) - 1])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_daily_percentiles_from_merged_minutes_are_within_two_percent(seed):
    rng = np.random.default_rng(seed)
    count = 5000
    latencies = np.round(rng.lognormal(mean=4.0, sigma=1.2, size=count), 3)
    seconds = rng.integers(0, 86_400, size=count)
    start = datetime(2026, 11, 20)
    events = filtered(*[
        (str(start + timedelta(seconds=int(second))), float(latency), True)
        for second, latency in zip(seconds, latencies, strict=True)
    ])
    with closing(run_day(events)) as con:
        day = detail_percentiles(con)
    for pct in (50, 95, 99):
        exact = exact_nearest_rank(latencies, pct)
        estimate = day[f"p{pct}_latency_ms"]
        assert abs(estimate - exact) / exact <= (LATENCY_GROWTH - 1) / (LATENCY_GROWTH + 1) + 1e-9


def test_percentile_of_identical_latencies_and_zero():
    events = filtered(*[(f"2026-11-20 10:{m:02d}:00", 250.0, True) for m in range(10)],
                      ("2026-11-20 11:00:00", 0.0, True))
    with closing(run_day(events)) as con:
        day = detail_percentiles(con)
    assert day["p50_latency_ms"] == pytest.approx(250.0, rel=0.01)
    assert day["p99_latency_ms"] == pytest.approx(250.0, rel=0.01)
    zeros = filtered(("2026-11-20 10:00:00", 0.0, True))
    with closing(run_day(zeros)) as con:
        day = detail_percentiles(con)
    assert day["p95_latency_ms"] == 0.0


def test_percentiles_merge_per_published_scenario_and_partner_and_skip_held_back_rows():
    # Partner p: 10 requests at 10 ms; partner q: 10 at 1000 ms; an unknown scenario: 1000 at
    # 5 ms, kept at the detail grain but never merged into a published scenario.
    events = pd.concat([
        filtered(*[(f"2026-11-20 10:{m:02d}:00", 10.0, True) for m in range(10)]),
        filtered(*[(f"2026-11-20 11:{m:02d}:00", 1000.0, True) for m in range(10)])
        .assign(partner_id="q"),
        filtered(*[(f"2026-11-20 12:{m % 60:02d}:{m // 60:02d}", 5.0, True)
                   for m in range(1000)]).assign(scenario_id="unknown"),
    ])
    with closing(run_day(events)) as con:
        found = rows(con, "select grain, scenario_id, partner_id, measured_requests, "
                          "p50_latency_ms, p99_latency_ms from latency_percentiles order by all")
    by_key = {(row["grain"], row["scenario_id"], row["partner_id"]): row for row in found}
    assert set(by_key) == {("detail", "s", "p"), ("detail", "s", "q"),
                           ("detail", "unknown", "p"), ("scenario", "s", None),
                           ("scenario_partner", "s", "p"), ("scenario_partner", "s", "q")}
    scenario = by_key[("scenario", "s", None)]
    assert scenario["measured_requests"] == 20
    assert scenario["p50_latency_ms"] == pytest.approx(10.0, rel=0.01)  # rank 10 of 20
    assert scenario["p99_latency_ms"] == pytest.approx(1000.0, rel=0.01)
    assert by_key[("scenario_partner", "s", "q")]["p50_latency_ms"] == pytest.approx(1000.0,
                                                                                     rel=0.01)
    assert by_key[("detail", "unknown", "p")]["measured_requests"] == 1000


def test_minute_grain_keeps_request_type_and_environment_apart():
    events = pd.concat([
        filtered(("2026-11-20 10:00:00", 1.0, True)),
        filtered(("2026-11-20 10:00:10", 1.0, True)).assign(request_type="POST"),
        filtered(("2026-11-20 10:00:20", 1.0, True)).assign(cloud_environment=""),
    ])
    with closing(compute_connection()) as con:
        con.register("filtered_events", events)
        run_stage(con, "aggregate", "minute_aggregate", HOUR_10)
        result = rows(con, "select request_type, cloud_environment, total_requests "
                           "from minute_aggregate order by all")
    assert result == [
        {"request_type": "GET", "cloud_environment": "", "total_requests": 1},
        {"request_type": "GET", "cloud_environment": "prod", "total_requests": 1},
        {"request_type": "POST", "cloud_environment": "prod", "total_requests": 1},
    ]


def test_utc_naive_window_parameters():
    aware = datetime(2026, 11, 20, 12, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert utc_naive(aware) == datetime(2026, 11, 20, 12)
    assert window_params(HOUR_10) == {"window_start": datetime(2026, 11, 20, 10),
                                      "window_end": datetime(2026, 11, 20, 11)}


def objectives_table(con, *rows: tuple) -> None:  # type: ignore[no-untyped-def]
    con.execute("create or replace temp table objectives (scenario_id varchar, objective varchar, "
                "kind varchar, threshold_ms double, target_pct double)")
    con.executemany("insert into objectives values (?, ?, ?, ?, ?)", list(rows))


def test_objective_attainment_counts_the_straddling_bucket_into_its_bound():
    g = LATENCY_GROWTH
    bucket = math.floor(math.log(300) / math.log(g))
    low, high = g ** bucket, g ** (bucket + 1)
    # 100 requests: 90 fast, 4 at 0 ms (good), 3 in the bucket holding 300 ms but under it,
    # 3 over it; one failed. Every request outside the day window is ignored.
    events = filtered(
        *[(f"2026-11-20 10:{m:02d}:00", 50.0, True) for m in range(59)],
        *[(f"2026-11-20 11:{m:02d}:00", 50.0, m != 0) for m in range(31)],
        *[(f"2026-11-20 12:0{m}:00", 0.0, True) for m in range(4)],
        *[(f"2026-11-20 13:0{m}:00", low + (300 - low) * (m + 0.5) / 3, True) for m in range(3)],
        *[(f"2026-11-20 14:0{m}:00", 300 + (high - 300) * (m + 1) / 4, True) for m in range(3)],
        ("2026-11-19 23:59:59", 900.0, False), ("2026-11-21 00:00:00", 900.0, False),
    )
    window = TimeWindow(DAY.replace(hour=0), DAY.replace(hour=0) + timedelta(days=1))
    with closing(run_day(events, window)) as con:
        objectives_table(con, ("s", "availability", "availability", None, 99.0),
                         ("s", "fast", "latency", 300.0, 95.0),
                         ("s", "other", "latency", 1000.0, 99.9))
        run_stage(con, "published", "objective_daily", window)
        found = {row["objective"]: row for row in rows(con, "select * from objective_daily")}
    assert found["availability"] == {
        "date": DAY.date(), "scenario_id": "s", "objective": "availability",
        "kind": "availability", "threshold_ms": None, "target_pct": 99.0,
        "total_requests": 100, "good_requests": 99, "attainment_pct": 99.0,
        "attainment_error_pct": 0.0, "objective_met": True}
    fast = found["fast"]
    assert fast["total_requests"] == 100
    # The exact share is 97 %; the 6 requests of the straddling bucket are judged together by
    # its representative latency, so the published share is 94 or 100 %, within 6 points.
    assert fast["attainment_error_pct"] == pytest.approx(6.0)
    assert fast["good_requests"] in (94, 100)
    assert abs(fast["attainment_pct"] - 97.0) <= fast["attainment_error_pct"]
    assert fast["objective_met"] == (fast["attainment_pct"] >= 95.0)
    assert found["other"]["good_requests"] == 100 and found["other"]["attainment_error_pct"] == 0
