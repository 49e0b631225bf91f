"""The schedules, evaluated for a given tick without a daemon, against a real instance."""

from datetime import UTC, datetime

import pytest
from dagster import build_schedule_context

from telemetry_assets.definitions import defs
from telemetry_assets.resources import RESOURCES, AutomationPolicy
from tests.events import wire_event
from tests.helpers import write_landing
from tests.platform import run_requested

REPOSITORY = defs.get_repository_def()
DAY_KEY = "2026-11-20"
HOURS = [f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)]


def tick(platform, name: str, at: datetime):
    """What the daemon's tick at `at` would launch: its run requests, or why it skips."""
    # Closed on return: the context's resources must not outlive the platform's instance.
    with build_schedule_context(
        instance=platform.instance, scheduled_execution_time=at, repository_def=REPOSITORY,
        resources=RESOURCES,
    ) as context:
        return REPOSITORY.get_schedule_def(name).evaluate_tick(context)


def requested(data) -> list[str]:
    return [request.partition_key for request in data.run_requests]


@pytest.mark.parametrize(
    ("delay", "at", "hour"),
    [
        (None, datetime(2026, 11, 20, 11, 15, tzinfo=UTC), "2026-11-20-10:00"),
        (None, datetime(2026, 11, 20, 11, 10, tzinfo=UTC), "2026-11-20-09:00"),
        ("40", datetime(2026, 11, 20, 11, 35, tzinfo=UTC), "2026-11-20-09:00"),
        ("40", datetime(2026, 11, 20, 11, 40, tzinfo=UTC), "2026-11-20-10:00"),
        ("0", datetime(2026, 11, 21, 0, 0, tzinfo=UTC), "2026-11-20-23:00"),
    ],
)
def test_hourly_schedule_requests_the_hour_that_closed_the_delay_ago(
    platform, monkeypatch, delay, at, hour
):
    if delay is None:
        monkeypatch.delenv("TELEMETRY_HOURLY_DELAY_MINUTES", raising=False)
    else:
        monkeypatch.setenv("TELEMETRY_HOURLY_DELAY_MINUTES", delay)
    data = tick(platform, "hourly_pipeline_schedule", at)
    assert requested(data) == [hour]
    (request,) = data.run_requests
    assert request.tags["dagster/schedule_name"] == "hourly_pipeline_schedule"
    assert request.tags["telemetry/trigger"] == "schedule"


def test_hourly_schedule_runs_each_hour_once(platform):
    at = datetime(2026, 11, 20, 11, 15, tzinfo=UTC)
    (request,) = tick(platform, "hourly_pipeline_schedule", at).run_requests
    platform.run_reference()
    run_id = run_requested(platform.instance, request, "hourly_pipeline")
    run = platform.instance.get_run_by_id(run_id)
    assert run.is_success and run.tags["dagster/partition"] == "2026-11-20-10:00"

    later = tick(platform, "hourly_pipeline_schedule", at.replace(minute=20))
    assert later.run_requests == []
    assert "2026-11-20-10:00 already has a run" in later.skip_message
    # The next hour is unaffected by the run of this one.
    assert requested(tick(platform, "hourly_pipeline_schedule", at.replace(hour=12))) == [
        "2026-11-20-11:00"]


def test_hourly_delay_is_read_at_each_tick_and_checked(platform, monkeypatch):
    at = datetime(2026, 11, 20, 11, 15, tzinfo=UTC)
    monkeypatch.setenv("TELEMETRY_HOURLY_DELAY_MINUTES", "90")
    assert requested(tick(platform, "hourly_pipeline_schedule", at)) == ["2026-11-20-08:00"]
    monkeypatch.setenv("TELEMETRY_HOURLY_DELAY_MINUTES", "a quarter")
    with pytest.raises(ValueError, match="whole number of minutes"):
        AutomationPolicy.from_env()
    assert AutomationPolicy.from_env({}).hourly_delay.total_seconds() == 15 * 60


def test_hourly_schedule_skips_before_the_first_partition(platform):
    data = tick(platform, "hourly_pipeline_schedule", datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    assert data.run_requests == [] and "no hour has closed" in data.skip_message


def test_daily_schedule_requests_a_closed_day_once_all_its_hours_are_processed(platform):
    after_midnight = datetime(2026, 11, 21, 0, 20, tzinfo=UTC)
    waiting = tick(platform, "daily_pipeline_schedule", after_midnight)
    assert waiting.run_requests == []
    assert "day 2026-11-20 waits for 24 hours" in waiting.skip_message

    # A day with a little traffic, as a day normally has.
    write_landing(platform.settings.landing_dir, datetime(2026, 11, 20, 10, tzinfo=UTC), "batch",
                  [wire_event(f"e{i}", time=f"2026-11-20T10:{i:02d}:00.000Z") for i in range(5)])
    platform.run_reference()
    platform.run_hours(*HOURS[:23])
    waiting = tick(platform, "daily_pipeline_schedule", after_midnight)
    assert waiting.run_requests == []
    assert "waits for 1 hours (first 2026-11-20-23:00)" in waiting.skip_message

    platform.run_hours(HOURS[23])
    ready = tick(platform, "daily_pipeline_schedule", after_midnight)
    assert requested(ready) == [DAY_KEY]
    (request,) = ready.run_requests
    assert request.tags["dagster/schedule_name"] == "daily_pipeline_schedule"

    run = platform.instance.get_run_by_id(
        run_requested(platform.instance, request, "daily_pipeline"))
    assert run.is_success
    done = tick(platform, "daily_pipeline_schedule", after_midnight.replace(minute=25))
    assert done.run_requests == [] and "day 2026-11-20 has been run" in done.skip_message


def test_statements_schedule_issues_the_month_that_closed(platform):
    schedule = REPOSITORY.get_schedule_def("sla_statements_schedule")
    assert schedule.cron_schedule == "0 6 2 * *"
    assert requested(tick(platform, "sla_statements_schedule",
                          datetime(2026, 12, 2, 6, 0, tzinfo=UTC))) == ["2026-11"]
