"""The `telemetry` command on a generated day: run count, progress, conservation of events."""

import pytest
from click.testing import CliRunner

from telemetry_cli.main import main


@pytest.mark.parametrize(
    "command",
    [[], ["backfill"], ["generate"], ["availability"], ["demo"], ["dashboard"], ["serve"],
     ["consume"]],
)
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-21", "2026-11-20", "the range is empty"),
        ("2026-11-20", "2026-11-20", "the range is empty"),
        ("2025-06-01", "2025-06-02", "starts before the first partition"),
        ("2026-11-20T10:30", "2026-11-21", "whole hours"),
        ("yesterday", "2026-11-21", "is not a date"),
        ("2026-11-20", "2999-01-01", "after the last complete hour"),
    ],
)
def test_backfill_rejects_a_bad_range_clearly(platform, start, end, message):
    result = CliRunner().invoke(main, ["backfill", "--start", start, "--end", end])
    assert result.exit_code == 2
    assert message in result.output
    assert list(platform.instance.get_runs()) == []


def test_generated_day_is_backfilled_in_three_runs_and_every_line_is_accounted_for(platform):
    runner = CliRunner()
    span = ["--start", "2026-11-20", "--end", "2026-11-21"]
    generated = runner.invoke(main, ["generate", *span, "--events-per-hour", "1500", "--seed", "3"])
    assert generated.exit_code == 0, generated.output
    from telemetry_synth import generate_landing

    summary = generate_landing(
        platform.settings.landing_dir, platform.settings.reference_dir,
        *_day_bounds(), events_per_hour=1500, seed=3, files_per_hour=4,
    )
    result = runner.invoke(main, ["backfill", *span])
    assert result.exit_code == 0, result.output
    assert "scenario_daily" in result.output and "24/24" in result.output
    runs = list(platform.instance.get_runs())
    assert len(runs) == 3 and all(run.is_success for run in runs)

    (raw,) = platform.query("select count(*) as events from raw.raw_events")
    (rejected,) = platform.query("select count(*) as lines from quarantine.rejected_events")
    assert raw["events"] == summary.events_written
    assert rejected["lines"] == summary.malformed_lines
    outcomes = {row["outcome"]: row["events"] for row in platform.query(
        "select outcome, sum(events) as events from staging.event_outcomes group by all")}
    assert sum(outcomes.values()) == raw["events"]
    assert outcomes["duplicate"] == summary.duplicate_events
    (kept,) = platform.query("select sum(total_requests) as requests from curated.validated")
    assert kept["requests"] == outcomes["kept"]
    (published,) = platform.query(
        "select sum(total_requests) as requests from published.scenario_daily")
    (held,) = platform.query("select coalesce(sum(total_requests), 0) as requests "
                             "from curated.validated where hold_reason is not null")
    assert published["requests"] + held["requests"] == outcomes["kept"]
    (minutes,) = platform.query(
        "select sum(total_requests) as requests from published.scenario_minute")
    assert minutes["requests"] == published["requests"]

    table = runner.invoke(main, ["availability", "--date", "2026-11-20"])
    assert table.exit_code == 0
    first_scenario = platform.query("select scenario_id from published.scenario_daily "
                                    "order by availability_pct, scenario_id limit 1")[0]
    assert first_scenario["scenario_id"] in table.output


def _day_bounds():
    from datetime import UTC, datetime

    return datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
