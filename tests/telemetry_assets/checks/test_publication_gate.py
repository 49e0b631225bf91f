"""Bad data never reaches `published`: a blocking check stops the run, publication refuses."""

from datetime import timedelta

import pytest
from dagster import AssetKey, DagsterEventType

from telemetry_assets.definitions import defs
from telemetry_assets.tables import MINUTE_AGGREGATE, PUBLISHED_TABLES, VALIDATED
from telemetry_cli.launcher import RunFailed
from telemetry_core.annotations import AnnotationStore
from tests.events import wire_event
from tests.helpers import DAY, rewrite_partition, same_rows, write_landing

DAY_KEY = "2026-11-20"
HOURS = [f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)]


def published_files(platform) -> dict[str, bytes]:
    return {table.name: platform.lake.partition_path(table, DAY).read_bytes()
            for table in PUBLISHED_TABLES}


@pytest.fixture
def published_day(platform):
    hour = DAY.replace(hour=10)
    write_landing(platform.settings.landing_dir, hour, "a",
                  [wire_event(f"e{i}", time=f"2026-11-20T10:{i:02d}:00Z", status=i % 7)
                   for i in range(40)])
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days(DAY_KEY)
    return platform


def test_failing_blocking_check_keeps_published_figures_and_fails_the_run(published_day):
    platform = published_day
    before = published_files(platform)
    figures = platform.query("select * from published.scenario_daily")
    hour = DAY.replace(hour=10)
    rewrite_partition(platform.lake, MINUTE_AGGREGATE, hour,
                      "select * replace (successful_requests + 5 as successful_requests) from t")

    with pytest.raises(RunFailed, match="blocking asset check"):
        platform.run_days(DAY_KEY)
    assert published_files(platform) == before
    assert platform.query("select * from published.scenario_daily") == figures
    (run,) = [r for r in platform.instance.get_runs(limit=1)]
    assert run.is_failure
    failed = [
        record.event_log_entry.dagster_event.event_specific_data
        for record in platform.instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        if not record.event_log_entry.dagster_event.event_specific_data.passed
    ]
    # The day still equals the sum of its (corrupt) minutes: only the counts rule can see it.
    assert {(e.asset_key.to_user_string(), e.check_name) for e in failed} == {
        ("daily_aggregate", "counts_add_up")}
    counts = next(e for e in failed if e.check_name == "counts_add_up")
    assert counts.metadata["offending_rows"].value >= 1

    platform.run_hours("2026-11-20-10:00")  # the fix: recompute the hour from its landing files
    platform.run_days(DAY_KEY)
    assert same_rows(platform.query("select * from published.scenario_daily"), figures)
    assert platform.instance.get_runs(limit=1)[0].is_success


def test_publishing_alone_refuses_inputs_that_break_a_blocking_rule(published_day):
    platform = published_day
    before = published_files(platform)
    rewrite_partition(platform.lake, VALIDATED, DAY, "select * from t union all select * from t")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={AssetKey("scenario_daily")})
    result = job.execute_in_process(instance=platform.instance, partition_key=DAY_KEY,
                                    raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "validated__unique_grain" in failure.step_failure_data.error.message
    assert published_files(platform) == before
    # The day's charts say why its figures did not move.
    (noted,) = AnnotationStore(platform.settings.lake_dir).between(
        DAY.replace(tzinfo=None), DAY.replace(tzinfo=None) + timedelta(days=1))
    assert noted.kind == "check_failed" and "validated__unique_grain" in noted.text
    assert (noted.starts_at, noted.ends_at) == (DAY.replace(tzinfo=None), None)


def test_a_day_without_traffic_is_summarised_as_zeros_and_published_empty(platform):
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days(DAY_KEY)
    (summary,) = platform.query("select * from quality.quality_summary")
    assert (summary["lines_read"], summary["events"], summary["checks_failed"]) == (0, 0, 0)
    for table in PUBLISHED_TABLES:
        assert platform.lake.partition_path(table, DAY).exists()
    assert platform.query("select * from published.scenario_daily") == []


def test_a_damaged_publication_is_named_and_hides_only_its_own_day(published_day):
    from click.testing import CliRunner
    from starlette.testclient import TestClient

    from telemetry_assets.dashboard.server import create_app
    from telemetry_assets.tables import SCENARIO_DAILY
    from telemetry_cli.main import main

    platform = published_day
    next_day = DAY.replace(day=21)
    write_landing(platform.settings.landing_dir, next_day.replace(hour=8), "b",
                  [wire_event(f"n{i}", time=f"2026-11-21T08:{i:02d}:00Z") for i in range(10)])
    platform.run_hours(*[f"2026-11-21-{hour:02d}:00" for hour in range(24)])
    platform.run_days("2026-11-21")

    path = platform.lake.partition_path(SCENARIO_DAILY, DAY)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2] + b"\x00" * 64)  # a torn, damaged file
    repair = "telemetry backfill --start 2026-11-20 --end 2026-11-21"

    # The other day is served as usual, with the damaged file and its repair named above it.
    page = TestClient(create_app()).get("/?day=2026-11-21")
    assert page.status_code == 200
    assert 'id="damage"' in page.text and str(path) in page.text and repair in page.text
    assert 'data-scenario="checkout.quote"' in page.text
    shown = CliRunner().invoke(main, ["availability", "--date", "2026-11-21"])
    assert shown.exit_code == 0, shown.output
    assert "checkout.quote" in shown.output and str(path) in " ".join(shown.output.split())

    # The damaged day itself says why it cannot be shown.
    page = TestClient(create_app()).get("/?day=2026-11-20")
    assert page.status_code == 404
    assert str(path) in page.text and repair in page.text
    printed = CliRunner().invoke(main, ["availability", "--date", DAY_KEY])
    assert printed.exit_code == 1 and printed.exception.__class__ is SystemExit
    said = " ".join(printed.output.split())
    assert str(path) in said and repair in said and "nothing can be read for 2026-11-20" in said

    hourly = platform.lake.partition_path(MINUTE_AGGREGATE, DAY.replace(hour=23))
    assert "--start 2026-11-20T23:00 --end 2026-11-21T00:00" in platform.lake.repair_hint(hourly)
    platform.run_days(DAY_KEY)  # reading the old publication must not stop its repair
    assert platform.query("select count(*) as n from published.scenario_daily "
                          "where date = date '2026-11-20'")[0]["n"] > 0
    page = TestClient(create_app()).get("/?day=2026-11-20")
    assert page.status_code == 200 and 'id="damage"' not in page.text
