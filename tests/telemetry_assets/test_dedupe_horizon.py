"""SPEC §2 on a real platform: an id seen twice within the dedupe horizon is one event, across
hours and across midnight, whatever order the hours run in (late hours re-run the later ones);
within an hour, the copy that landed first wins, not the file whose name sorts first."""

import os
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from telemetry_assets.automation.late_data import evaluate_late_data
from telemetry_assets.resources import AutomationPolicy
from telemetry_cli.main import main
from tests.events import wire_event
from tests.helpers import write_landing
from tests.platform import Platform, make_platform, run_requested

HOURS = ["2026-11-20-23:00", "2026-11-21-00:00", "2026-11-21-01:00"]
KEPT = """
    select cast(date_trunc('hour', event_time) as varchar) as hour, event_id, is_success
    from staging.filtered_events order by all
"""
OUTCOMES = "select cast(hour as varchar) as hour, outcome, events from staging.event_outcomes " \
           "order by all"


def land_copies_across_midnight(landing_dir: Path) -> None:
    """`first` lands at 23:50 and again after midnight; `second` twice after midnight; `far` 25 h
    apart (two events)."""
    write_landing(landing_dir, datetime(2026, 11, 20, 23), "late-evening", [
        wire_event("first", time="2026-11-20T23:50:00Z", status=0),
        wire_event("far", time="2026-11-20T23:10:00Z", status=0),
    ])
    write_landing(landing_dir, datetime(2026, 11, 21, 0), "midnight", [
        wire_event("first", time="2026-11-21T00:10:00Z", status=9),
        wire_event("second", time="2026-11-21T00:20:00Z", status=0),
    ])
    write_landing(landing_dir, datetime(2026, 11, 21, 1), "one-am", [
        wire_event("second", time="2026-11-21T01:05:00Z", status=9),
        wire_event("first", time="2026-11-21T01:30:00Z", status=9),
    ])
    write_landing(landing_dir, datetime(2026, 11, 22, 0), "next-night", [
        wire_event("far", time="2026-11-22T00:10:00Z", status=9),
    ])


def figures(platform: Platform) -> tuple[list[dict], list[dict]]:
    return platform.query(KEPT), platform.query(OUTCOMES)


def new_platform(root: Path):
    root.mkdir()
    return make_platform(root)


def test_copies_across_hours_count_once_however_the_hours_are_run(tmp_path: Path):
    hours = [*HOURS, "2026-11-22-00:00"]

    with new_platform(tmp_path / "range") as platform:
        land_copies_across_midnight(platform.settings.landing_dir)
        platform.run_reference()
        platform.run_hours(*hours)
        in_one_run = figures(platform)

    with new_platform(tmp_path / "in-order") as platform:
        land_copies_across_midnight(platform.settings.landing_dir)
        platform.run_reference()
        for hour in hours:
            platform.run_hours(hour)
        hour_by_hour = figures(platform)

    with new_platform(tmp_path / "backwards") as platform:
        land_copies_across_midnight(platform.settings.landing_dir)
        platform.run_reference()
        for hour in reversed(hours):
            platform.run_hours(hour)
        # Run last, 23:00 lists the later hours that kept its events' copies; the sensor re-runs
        # them, and once they have run nothing is left to request.
        result = evaluate_late_data(platform.instance, platform.settings.landing_dir, None,
                                    AutomationPolicy())
        requested = [request.partition_key for request in result.run_requests]
        assert requested == ["2026-11-21-00:00", "2026-11-21-01:00"]
        for request in result.run_requests:
            run_requested(platform.instance, request)
        again = evaluate_late_data(platform.instance, platform.settings.landing_dir,
                                   result.cursor, AutomationPolicy())
        assert [request.partition_key for request in again.run_requests] == []
        backwards_then_repaired = figures(platform)

    kept, outcomes = in_one_run
    assert kept == [
        {"hour": "2026-11-20 23:00:00", "event_id": "far", "is_success": True},
        {"hour": "2026-11-20 23:00:00", "event_id": "first", "is_success": True},
        {"hour": "2026-11-21 00:00:00", "event_id": "second", "is_success": True},
        {"hour": "2026-11-22 00:00:00", "event_id": "far", "is_success": False},
    ]
    duplicates = {row["hour"]: row["events"] for row in outcomes if row["outcome"] == "duplicate"}
    assert duplicates == {"2026-11-21 00:00:00": 1, "2026-11-21 01:00:00": 2}
    assert hour_by_hour == in_one_run
    assert backwards_then_repaired == in_one_run


def landed_at(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_within_an_hour_the_copy_that_landed_first_wins(platform: Platform):
    landing = platform.settings.landing_dir
    hour = datetime(2026, 11, 20, 10)
    # "a-..." sorts first but lands second.
    failed = write_landing(landing, hour, "a-retry", [wire_event("once", status=9)])
    succeeded = write_landing(landing, hour, "b-original", [wire_event("once", status=0)])
    landed_at(succeeded, datetime(2026, 11, 20, 10, 16, tzinfo=UTC))
    landed_at(failed, datetime(2026, 11, 20, 10, 17, tzinfo=UTC))
    platform.run_reference()
    platform.run_hours("2026-11-20-10:00")
    assert platform.query("select event_id, is_success from staging.filtered_events") == [
        {"event_id": "once", "is_success": True}]

    # The other way round, the other copy is the event.
    landed_at(failed, datetime(2026, 11, 20, 10, 15, tzinfo=UTC))
    platform.run_hours("2026-11-20-10:00")
    assert platform.query("select event_id, is_success from staging.filtered_events") == [
        {"event_id": "once", "is_success": False}]


def test_a_backfill_before_processed_hours_names_the_hours_it_made_stale(platform: Platform):
    land_copies_across_midnight(platform.settings.landing_dir)
    platform.run_reference()
    platform.run_hours(*HOURS[1:])  # 01:00 already sees 00:00's copies; 00:00 kept two events
    result = CliRunner().invoke(
        main, ["backfill", "--start", "2026-11-20T23:00", "--end", "2026-11-21T00:00"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert ("1 later hour(s) counted events this range holds earlier copies of: "
            "2026-11-21-00:00.") in said
    assert "run `telemetry backfill --start 2026-11-21 --end 2026-11-22`" in said
