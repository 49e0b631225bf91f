"""The `telemetry` command on a generated day: run count, progress, conservation of events."""

import io
import traceback
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from telemetry_assets.mood.burn_rates import current_mood
from telemetry_assets.resources import MoodSettings
from telemetry_cli.dashboard import print_mood
from telemetry_cli.main import main
from tests.events import wire_event
from tests.helpers import HOSTILE, HOUR_10, RICH_ID, write_landing


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command and subcommand of `group`, as the words that invoke it."""
    found = [list(path)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += command_paths(command, (*path, name))
        else:
            found.append([*path, name])
    return found


@pytest.mark.parametrize("command", command_paths(main), ids=" ".join)
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


def cli(*args: str):
    """The command's result; it must end by exiting, never by an exception's traceback."""
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        "".join(traceback.format_exception(result.exception))
    assert "Traceback" not in result.output
    return result


def test_availability_and_mood_print_reference_names_as_plain_text(hostile_day):
    result = cli("availability", "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    for scenario_id, name in HOSTILE.items():
        assert scenario_id in result.output and name in result.output

    with hostile_day.lake.warehouse(read_only=True) as con:
        report = current_mood(con, MoodSettings().policy)
    output = io.StringIO()
    print_mood(report, Console(file=output, width=200))
    assert all(scenario_id in output.getvalue() for scenario_id in HOSTILE)

    # A day without data is an error that lists the days there are.
    result = cli("availability", "--date", "2026-11-19")
    assert result.exit_code == 1
    assert "nothing is published for 2026-11-19" in result.output
    assert "published days (newest first): 2026-11-20" in result.output


@pytest.mark.parametrize("day", ["2026-13-40", "someday", "2026-11-20T10:00", ""])
def test_availability_rejects_a_date_that_is_not_a_day(platform, day):
    result = cli("availability", "--date", day)
    assert result.exit_code == 2
    assert "Invalid value for '--date'" in result.output and "is not a day" in result.output


def test_availability_says_when_there_is_no_data_or_nothing_published(platform):
    result = cli("availability", "--date", "2026-11-20")
    assert result.exit_code == 1
    assert f"nothing in the lake at {platform.lake.root}: run the pipeline first" in result.output

    platform.run_reference()  # creates the warehouse, publishes no day
    result = cli("availability", "--date", "yesterday")
    assert result.exit_code == 1
    assert "nothing is published yet" in result.output


def test_version_is_the_installed_distribution_version():
    result = cli("--version")
    assert result.exit_code == 0
    assert version("telemetry-availability") in result.output


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_dashboard_rejects_a_port_out_of_range_at_once(port):
    result = cli("dashboard", "--port", port)
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output and "1<=x<=65535" in result.output


def test_backfill_of_part_of_a_day_runs_its_hours_and_says_why_the_day_is_skipped(platform):
    write_landing(platform.settings.landing_dir, HOUR_10.start, "part-0", [wire_event("e1")])
    write_landing(platform.settings.landing_dir, HOUR_10.end, "part-0",
                  [wire_event("e2", time="2026-11-20T11:30:00.000Z")])
    result = cli("backfill", "--start", "2026-11-20T10:00", "--end", "2026-11-20T12:00")
    assert result.exit_code == 0, result.output
    assert ("2026-11-20: only 2 of its 24 hours are in this range; run the day with "
            "--start 2026-11-20 --end 2026-11-21") in result.output
    runs = list(platform.instance.get_runs())
    assert sorted(run.job_name for run in runs) == ["hourly_pipeline", "reference_data"]
    assert all(run.is_success for run in runs)
    (raw,) = platform.query("select count(*) as events from raw.raw_events")
    assert raw["events"] == 2


def test_first_backfill_without_reference_csvs_says_where_they_go(platform):
    for csv_file in platform.settings.reference_dir.iterdir():
        csv_file.unlink()
    result = cli("backfill", "--start", "2026-11-20", "--end", "2026-11-21")
    assert result.exit_code == 1
    # Whichever reference asset runs first names its own file.
    printed = " ".join(result.output.split())
    assert any(f"{platform.settings.reference_dir / name}: file not found" in printed
               for name in ("scenarios.csv", "customers.csv", "operation_scenarios.csv"))
    assert "data/reference/" in result.output and "TELEMETRY_REFERENCE_DIR" in result.output


def test_backfill_error_is_printed_as_it_is_not_as_markup(platform):
    (platform.settings.reference_dir / "scenarios.csv").write_text(
        "scenario_id,scenario_name,service,slo_target_pct,stid\n"
        f"{RICH_ID},a,s,99,1\n{RICH_ID},b,s,99,2\n")
    result = cli("backfill", "--start", "2026-11-20", "--end", "2026-11-21")
    assert result.exit_code == 1
    assert f"(value '{RICH_ID}')" in result.output
