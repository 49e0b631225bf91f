"""Every quality rule fails on the defect it guards against and passes on clean data."""

import shutil
from contextlib import closing
from dataclasses import replace
from datetime import timedelta

import pytest
from dagster import AssetCheckEvaluation, DagsterEventType, TimeWindow

from telemetry_assets.checks.audits import AUDITS, run_audit
from telemetry_assets.checks.contracts import CONTRACTS, validate_contract
from telemetry_assets.lake import Lake
from telemetry_assets.resources import QualityThresholds
from telemetry_assets.tables import (
    DAILY_AGGREGATE,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    LATENCY_PERCENTILES,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    REJECTED_EVENTS,
    SCENARIO_MINUTE,
    VALIDATED,
)
from telemetry_core.sql import compute_connection
from tests.events import wire_event
from tests.helpers import DAY, rewrite_partition, write_landing
from tests.platform import make_platform

DAY_KEY = "2026-11-20"
DAY_WINDOW = TimeWindow(DAY, DAY + timedelta(days=1))
HOUR = DAY.replace(hour=10)
HOUR_WINDOW = TimeWindow(HOUR, HOUR + timedelta(hours=1))
THRESHOLDS = QualityThresholds(
    max_quarantine_share=0.05, min_share_of_week_before=0.5, min_events_to_compare=10,
    busy_requests_per_minute=10,
)


def land_clean_day(landing_dir) -> None:
    """Known ids only; search.query busy in every minute of the day, a few failures."""
    for hour in range(24):
        events = [
            wire_event(f"s{hour}-{minute}-{i}",
                       time=f"2026-11-20T{hour:02d}:{minute:02d}:{i * 5:02d}.000Z",
                       cc="ms.b.tel.scenario=search.query;ms.b.tel.partner=fabrikam",
                       status=6 if (minute + i) % 97 == 0 else 0, latency=20.0 + i)
            for minute in range(60) for i in range(11)
        ]
        if hour == 10:
            events += [wire_event(f"q{i}", time=f"2026-11-20T10:{i:02d}:30.000Z",
                                  latency=100.0 + i) for i in range(30)]
            events.append("{not json")
        write_landing(landing_dir, DAY.replace(hour=hour), "clean", events)


@pytest.fixture(scope="module")
def clean_platform(tmp_path_factory):
    """One pipeline run over a clean day, shared read-only by the tests of this module."""
    with make_platform(tmp_path_factory.mktemp("clean")) as platform:
        land_clean_day(platform.settings.landing_dir)
        platform.run_reference()
        hourly = platform.run_hours(*[f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)])
        daily = platform.run_days(DAY_KEY)
        platform.run_ids = (hourly, daily)
        yield platform


@pytest.fixture
def lake(clean_platform, tmp_path) -> Lake:
    """A private copy of the clean lake, to plant a defect in."""
    copy = tmp_path / "lake"
    shutil.copytree(clean_platform.lake.root, copy)
    return Lake(copy, tmp_path / "warehouse.duckdb")


def test_every_check_passed_in_the_clean_runs(clean_platform):
    instance = clean_platform.instance
    evaluations = []
    for run_id in clean_platform.run_ids:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        evaluations += [r.event_log_entry.dagster_event.event_specific_data for r in records]
    assert all(isinstance(e, AssetCheckEvaluation) for e in evaluations)
    assert len(evaluations) == len(AUDITS) + len(CONTRACTS)
    assert [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed] == []
    summary = clean_platform.query("select * from quality.quality_summary")
    assert summary[0]["checks_failed"] == 0 and summary[0]["rejected_lines"] == 1


PLANTED = {
    "filtered_events__outcomes_add_up":
        (FILTERED_EVENTS, HOUR, "select * from t where event_id <> 'q3'", HOUR_WINDOW),
    "rejected_events__quarantine_rate":
        (REJECTED_EVENTS, HOUR, "select t.* from t, range(2000)", HOUR_WINDOW),
    "minute_aggregate__unique_grain":
        (MINUTE_AGGREGATE, HOUR, "select * from t union all (select * from t limit 1)",
         HOUR_WINDOW),
    "minute_aggregate__counts_add_up":
        (MINUTE_AGGREGATE, HOUR, "select * replace (successful_requests + 1 as "
         "successful_requests) from t", HOUR_WINDOW),
    "minute_aggregate__latency_non_negative":
        (MINUTE_AGGREGATE, HOUR, "select * replace (-1.0 as avg_latency_ms) from t",
         HOUR_WINDOW),
    "minute_latency__unique_grain":
        (MINUTE_LATENCY, HOUR, "select * from t union all (select * from t limit 1)",
         HOUR_WINDOW),
    "minute_latency__matches_aggregate":
        (MINUTE_LATENCY, HOUR, "select * replace (requests + 1 as requests) from t", HOUR_WINDOW),
    "daily_aggregate__unique_grain":
        (DAILY_AGGREGATE, DAY, "select * from t union all (select * from t limit 1)",
         DAY_WINDOW),
    "daily_aggregate__counts_add_up":
        (DAILY_AGGREGATE, DAY, "select * replace (failed_requests + 1 as failed_requests) from t",
         DAY_WINDOW),
    "latency_percentiles__percentiles_ordered":
        (LATENCY_PERCENTILES, DAY,
         "select * replace (p99_latency_ms + 1 as p50_latency_ms) from t", DAY_WINDOW),
    "daily_aggregate__matches_minutes":
        (DAILY_AGGREGATE, DAY, "select * replace (total_requests + 1 as total_requests, "
         "successful_requests + 1 as successful_requests) from t", DAY_WINDOW),
    "validated__unique_grain":
        (VALIDATED, DAY, "select * from t union all (select * from t limit 1)", DAY_WINDOW),
    "validated__counts_add_up":
        (VALIDATED, DAY, "select * replace (0 as failed_requests) from t", DAY_WINDOW),
    "validated__availability_in_range":
        (VALIDATED, DAY, "select * replace (100.5 as availability_pct) from t", DAY_WINDOW),
    "validated__unknown_ids":
        (VALIDATED, DAY, "select * replace (false as partner_known) from t", DAY_WINDOW),
    "scenario_minute__completeness":
        (SCENARIO_MINUTE, DAY, "select * from t where minute <> timestamp '2026-11-20 03:33'",
         DAY_WINDOW),
}


def test_every_audit_has_a_planted_defect():
    assert set(PLANTED) | {"filtered_events__traffic_vs_week_before"} == {
        audit.name for audit in AUDITS}


@pytest.mark.parametrize("audit", [a for a in AUDITS if a.name in PLANTED],
                         ids=lambda audit: audit.name)
def test_audit_passes_clean_and_fails_on_its_defect(lake, audit):
    table, start, defect, window = PLANTED[audit.name]
    clean = run_audit(lake, audit, window, THRESHOLDS)
    assert clean.passed, clean.sample
    rewrite_partition(lake, table, start, defect)
    planted = run_audit(lake, audit, window, THRESHOLDS)
    assert not planted.passed
    assert planted.offending_rows >= 1 and planted.sample


def test_thin_hour_compared_with_the_week_before(lake):
    audit = next(a for a in AUDITS if a.name == "filtered_events__traffic_vs_week_before")
    assert run_audit(lake, audit, HOUR_WINDOW, THRESHOLDS).passed  # no history: no comparison
    week_before = HOUR - timedelta(days=7)
    with closing(compute_connection()) as con:
        path = lake.partition_path(EVENT_OUTCOMES, HOUR)
        same = con.sql(f"select hour - interval 7 day as hour, outcome, events "
                       f"from read_parquet('{path}', hive_partitioning = false)")
        lake.write(EVENT_OUTCOMES, week_before, same)
    assert run_audit(lake, audit, HOUR_WINDOW, THRESHOLDS).passed  # same traffic as last week
    with closing(compute_connection()) as con:
        busier = con.sql(f"select hour - interval 7 day as hour, outcome, events * 3 as events "
                         f"from read_parquet('{path}', hive_partitioning = false)")
        lake.write(EVENT_OUTCOMES, week_before, busier)
    thin = run_audit(lake, audit, HOUR_WINDOW, THRESHOLDS)
    assert thin.offending_rows == 1
    assert thin.sample[0]["pct_of_week_before"] == pytest.approx(33.3, abs=0.1)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.table.name)
def test_published_contract_passes_clean_and_fails_on_broken_rows(lake, contract):
    path = lake.partition_path(contract.table, DAY)
    with closing(compute_connection()) as con:
        frame = con.sql(f"select * from read_parquet('{path}', hive_partitioning = false)").df()
    assert validate_contract(contract, frame).success
    broken = frame.copy()
    broken.loc[0, contract.percentages[0]] = 150.0
    broken = broken._append(broken.iloc[[1]], ignore_index=True)
    result = validate_contract(contract, broken)
    assert not result.success
    failed = {failure["expectation"] for failure in result.failures}
    assert failed == {"expect_column_values_to_be_between", "expect_compound_columns_to_be_unique"}
    reordered = validate_contract(contract, frame[list(reversed(frame.columns))])
    assert [f["expectation"] for f in reordered.failures] == [
        "expect_table_columns_to_match_ordered_list"]


def test_thresholds_come_from_the_environment():
    thresholds = QualityThresholds.from_env({"TELEMETRY_MAX_QUARANTINE_SHARE": "0.2",
                                             "TELEMETRY_BUSY_REQUESTS_PER_MINUTE": "3"})
    assert thresholds == replace(QualityThresholds(), max_quarantine_share=0.2,
                                 busy_requests_per_minute=3.0)


def test_daily_counts_must_match_minutes_in_failures_and_latency_samples(lake):
    audit = next(a for a in AUDITS if a.name == "daily_aggregate__matches_minutes")
    rewrite_partition(lake, DAILY_AGGREGATE, DAY,
                      "select * replace (latency_count - 1 as latency_count) from t")
    drifted = run_audit(lake, audit, DAY_WINDOW, THRESHOLDS)
    assert drifted.offending_rows >= 1
    assert all(row["daily_total"] == row["minutes_total"] for row in drifted.sample)
