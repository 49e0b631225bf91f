"""The live path (SPEC §8): the open hours' provisional figures, each landing file parsed once,
replaced by the exact closed-hour run; and the mood sensor paging from them before the hour ends.

checkout.quote (SLO 99.5 % in the test reference) takes 30 requests a minute; the landing files
arrive a few minutes at a time, as a receiver would write them, and a refresh runs after each.
"""

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from dagster import SensorResult, build_sensor_context

from telemetry_assets import live
from telemetry_assets.automation import service_mood
from telemetry_assets.dashboard.server import create_app
from telemetry_assets.mood.burn_rates import latest_data_time
from telemetry_assets.mood.outbox import read_notifications
from telemetry_assets.resources import RESOURCES, TelemetryStore
from telemetry_cli.main import main
from telemetry_core import landing
from tests.events import wire_event
from tests.helpers import rows, serve_asgi, write_landing
from tests.telemetry_assets.dashboard.browser import Browser
from tests.telemetry_assets.dashboard.test_dashboard import ARTIFACTS
from tests.telemetry_assets.dashboard.test_pulse_stream import Stream

HOUR = datetime(2026, 11, 20, 10)
PER_MINUTE = 30


def minute_events(start: datetime, minutes: int, failing: bool = False,
                  prefix: str = "e") -> list[dict]:
    return [
        wire_event(
            event_id=f"{prefix}-{start + timedelta(minutes=m):%H%M}-{n}",
            time=f"{start + timedelta(minutes=m, seconds=n * 2):%Y-%m-%dT%H:%M:%S}.000Z",
            status=5 if failing else 0,
        )
        for m in range(minutes) for n in range(PER_MINUTE)
    ]


def land(platform, start: datetime, minutes: int, name: str, **options) -> None:  # type: ignore[no-untyped-def]
    write_landing(platform.settings.landing_dir, start.replace(minute=0), name,
                  minute_events(start, minutes, **options))


def refresh(now: datetime) -> list[live.HourRefresh]:
    store = TelemetryStore()
    return live.refresh(store.lake, store.settings, store.dedupe_horizon, now)


def current(platform, sql: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return live.read_current(platform.lake, lambda con: rows(con, sql)).value


@pytest.fixture
def parsed_files(monkeypatch) -> list[str]:
    """Every landing file the raw stage reads, in order, whoever reads it."""
    read: list[str] = []
    original = landing.read_lines

    def recording(paths):  # type: ignore[no-untyped-def]
        read.extend(str(path) for path in paths)
        return original(paths)

    monkeypatch.setattr(landing, "read_lines", recording)
    return read


def test_each_landing_file_is_parsed_once_however_many_refreshes(platform, parsed_files):
    platform.run_reference()
    for step in range(6):
        land(platform, HOUR + timedelta(minutes=5 * step), 5, f"part-{step}")
        for second in (10, 40):
            (opened,) = [r for r in refresh(HOUR + timedelta(minutes=5 * step + 5,
                                                             seconds=second)) if r.files]
            assert opened.files == step + 1
            assert opened.files_parsed == (1 if second == 10 else 0)
    assert sorted(parsed_files) == sorted({*parsed_files})
    assert len(parsed_files) == 6

    # A file written again (appended to) is parsed again; the others are not.
    appended = platform.settings.landing_dir / "events/date=2026-11-20/hour=10/part-0.jsonl"
    with appended.open("ab") as file:
        file.write(json.dumps(wire_event(event_id="late-one",
                                         time="2026-11-20T10:00:59.000Z")).encode() + b"\n")
    (opened,) = [r for r in refresh(HOUR + timedelta(minutes=31)) if r.files]
    assert opened.files_parsed == 1 and parsed_files[-1] == str(appended)
    assert opened.events == 6 * 5 * PER_MINUTE + 1
    assert opened.requests == 6 * 5 * PER_MINUTE + 1


def test_the_closed_hour_run_replaces_the_provisional_figures_and_a_late_event_counts_once(
    platform,
):
    platform.run_reference()
    land(platform, HOUR, 20, "early")
    # A copy of an early event in a later file is the same event, provisionally too.
    write_landing(platform.settings.landing_dir, HOUR, "replayed",
                  minute_events(HOUR, 1)[:3] + minute_events(HOUR + timedelta(minutes=20), 10))
    refresh(HOUR + timedelta(minutes=30, seconds=5))
    provisional = current(platform, "select sum(total_requests) as requests from "
                                    "aggregate.minute_aggregate")
    assert provisional == [{"requests": 30 * PER_MINUTE}]
    (shown,) = current(platform, "select hour, as_of, requests from live.refreshes")
    assert shown == {"hour": HOUR, "as_of": HOUR + timedelta(minutes=30, seconds=5),
                     "requests": 30 * PER_MINUTE}
    # Today's published tables are provisional too, from the same SQL.
    assert current(platform, "select sum(total_requests) as requests "
                             "from published.scenario_daily") == [{"requests": 30 * PER_MINUTE}]

    # Lands after the last refresh: only the exact run sees it.
    land(platform, HOUR + timedelta(minutes=59), 1, "late")
    platform.run_hours("2026-11-20-10:00")
    exact = platform.query("select sum(total_requests) as requests "
                           "from aggregate.minute_aggregate")
    assert exact == [{"requests": 31 * PER_MINUTE}]
    assert current(platform, "select sum(total_requests) as requests from "
                             "aggregate.minute_aggregate") == exact
    assert current(platform, "select count(*) as hours from live.refreshes") == [{"hours": 0}]
    # The next refresh drops what the exact run replaced.
    refresh(HOUR + timedelta(minutes=70))
    assert not (platform.lake.live.root / "aggregate" / "minute_aggregate"
                / "2026-11-20T10").exists()


def test_an_event_seen_in_the_hour_before_counts_once_while_both_are_provisional(platform):
    platform.run_reference()
    before = HOUR - timedelta(hours=1)
    land(platform, before + timedelta(minutes=50), 10, "before")
    copy = minute_events(before + timedelta(minutes=59), 1)[0]
    write_landing(platform.settings.landing_dir, HOUR, "copy",
                  [copy | {"time": "2026-11-20T10:00:01.000Z"}, *minute_events(HOUR, 2)])
    refresh(HOUR + timedelta(minutes=3))
    assert current(platform, "select sum(total_requests) as requests from "
                             "aggregate.minute_aggregate") == [{"requests": 12 * PER_MINUTE}]
    outcomes = current(platform, "select outcome, events from staging.event_outcomes "
                                 "where hour = '2026-11-20 10:00' order by outcome")
    assert outcomes == [{"outcome": "duplicate", "events": 1},
                        {"outcome": "kept", "events": 2 * PER_MINUTE}]


def test_a_refresh_killed_before_its_manifest_leaves_the_last_one_whole(platform, parsed_files):
    platform.run_reference()
    land(platform, HOUR, 10, "first")
    refresh(HOUR + timedelta(minutes=10))
    parsed = platform.lake.live.root / "parsed" / "2026-11-20T10"
    manifest = (parsed / "manifest.json").read_bytes()
    land(platform, HOUR + timedelta(minutes=10), 5, "second")
    refresh(HOUR + timedelta(minutes=15))
    # As if killed after writing the chunk of "second" and before naming it.
    (parsed / "manifest.json").write_bytes(manifest)
    orphans = set(parsed.glob("*.parquet"))
    (opened,) = [r for r in refresh(HOUR + timedelta(minutes=16)) if r.files]
    assert opened.files_parsed == 1 and opened.requests == 15 * PER_MINUTE
    assert len(set(parsed.glob("*.parquet"))) == 2 and len(orphans) == 2
    assert parsed_files.count(str(platform.settings.landing_dir
                                  / "events/date=2026-11-20/hour=10/second.jsonl")) == 2


def test_the_mood_pages_during_the_open_hour_and_reports_it_materialized(platform, monkeypatch):
    platform.run_reference()
    for hour in range(6):
        start = HOUR - timedelta(hours=6 - hour)
        land(platform, start, 60, f"history-{hour}")
    platform.run_hours(*(f"2026-11-20-{h:02d}:00" for h in range(4, 10)))
    land(platform, HOUR, 12, "healthy")
    # A total outage from 10:12.
    land(platform, HOUR + timedelta(minutes=12), 2, "outage", failing=True)

    def tick(now: datetime, cursor: str | None):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(service_mood, "utc_now", lambda: now)
        with build_sensor_context(instance=platform.instance, cursor=cursor,
                                  resources=RESOURCES) as context:
            result = service_mood.service_mood_sensor(context)
            return context.cursor, result

    cursor, result = tick(datetime(2026, 11, 20, 10, 14, 1, tzinfo=UTC), None)
    assert isinstance(result, SensorResult) and not result.run_requests
    (reported,) = result.asset_events
    assert reported.partition == "2026-11-20-10:00"
    assert reported.metadata["files_parsed"].value == 2
    # 60 failures spend the error budget of the 6 hours of history (0.5 % of 10,800 requests is
    # 54) but burn only 60 / 1,800 / 0.005 = 6.7x over the last hour: degraded, no page yet.
    assert "checkout.quote healthy -> degraded at 10:14" in result.skip_reason.skip_message

    land(platform, HOUR + timedelta(minutes=14), 4, "outage-more", failing=True)
    cursor, result = tick(datetime(2026, 11, 20, 10, 18, 1, tzinfo=UTC), cursor)
    # Judged at every whole minute since, then at the refresh's instant: at 10:16 the last hour
    # holds 120 failures of 1,800 requests (13.3x), at 10:17 150 (16.7x over 1h, 100 % over
    # 5 minutes): the page fires then, before the hour is over.
    said = result.skip_reason.skip_message
    assert "checkout.quote degraded -> breaching at 10:17" in said
    (page,) = [row for row in read_notifications(platform.lake) if row["state"] == "breaching"]
    assert page["text"].endswith("as of 2026-11-20 10:17 UTC (provisional).")
    assert json.loads(page["payload"])["details"]["provisional"] is True
    assert "-> degraded" not in said and "-> healthy" not in said
    assert json.loads(cursor)["as_of"] == "2026-11-20T10:18:01"

    def latest(con):  # type: ignore[no-untyped-def]
        return latest_data_time(con)

    assert live.read_current(platform.lake, latest).value == datetime(2026, 11, 20, 10, 18, 1)
    assert os.path.exists(platform.lake.live.partition_path(live.REFRESHES, HOUR))


def test_the_cli_prints_provisional_figures_with_their_as_of_time(platform):
    platform.run_reference()
    land(platform, HOUR, 20, "early")
    land(platform, HOUR + timedelta(minutes=20), 10, "outage", failing=True)
    refresh(HOUR + timedelta(minutes=30, seconds=5))

    shown = CliRunner().invoke(main, ["availability", "--date", "2026-11-20"])
    assert shown.exit_code == 0, shown.output
    assert "PROVISIONAL as of 2026-11-20 10:30:05 UTC" in shown.output
    (line,) = [line for line in shown.output.splitlines() if "checkout.quote" in line]
    assert f"{30 * PER_MINUTE:,}" in line and f"{10 * PER_MINUTE:,}" in line
    assert "66.667" in line

    pulse = CliRunner().invoke(main, ["pulse", "--json"])
    figures = json.loads(pulse.output)
    assert figures["provisional"] is True and figures["as_of"] == "2026-11-20T10:30:05+00:00"
    (quote,) = [s for s in figures["scenarios"] if s["scenario_id"] == "checkout.quote"]
    # The minutes that began in the last 10 (10:21 to 10:30, the last one in progress and
    # empty): all failed.
    assert (quote["requests"], quote["failed"]) == (9 * PER_MINUTE, 9 * PER_MINUTE)

    platform.run_hours("2026-11-20-10:00")
    exact = CliRunner().invoke(main, ["pulse", "--json"])
    assert json.loads(exact.output)["provisional"] is False


def test_todays_tables_follow_in_the_background_and_are_brought_up_to_date_when_shown(
    platform,
):
    platform.run_reference()
    daily = "select sum(total_requests) as requests from published.scenario_daily"
    land(platform, HOUR, 10, "first")
    refresh(HOUR + timedelta(minutes=10, seconds=5))
    assert current(platform, daily) == [{"requests": 10 * PER_MINUTE}]
    land(platform, HOUR + timedelta(minutes=10), 1, "second")
    refresh(HOUR + timedelta(minutes=10, seconds=35))
    # The minutes follow at once; in the background, the day's tables wait their 5 minutes.
    assert current(platform, "select sum(total_requests) as requests from "
                             "aggregate.minute_aggregate") == [{"requests": 11 * PER_MINUTE}]
    assert current(platform, daily) == [{"requests": 10 * PER_MINUTE}]
    # A reader that shows the day has it remade from the minutes as they are.
    shown = live.read_current(platform.lake, lambda con: rows(con, daily),
                              days=[HOUR.date()]).value
    assert shown == [{"requests": 11 * PER_MINUTE}]
    assert CliRunner().invoke(main, ["availability", "--date", "2026-11-20"]).exit_code == 0
    land(platform, HOUR + timedelta(minutes=11), 4, "third")
    refresh(HOUR + timedelta(minutes=15, seconds=40))
    assert current(platform, daily) == [{"requests": 15 * PER_MINUTE}]


def test_a_copy_of_an_event_an_exact_hour_holds_counts_once_provisionally(platform):
    platform.run_reference()
    earlier = HOUR - timedelta(hours=5)
    land(platform, earlier, 60, "earlier")
    platform.run_hours(f"{earlier:%Y-%m-%d-%H}:00")
    copies = [event | {"time": "2026-11-20T10:00:30.000Z"}
              for event in minute_events(earlier + timedelta(minutes=7), 1)[:4]]
    write_landing(platform.settings.landing_dir, HOUR, "copies",
                  [*copies, *minute_events(HOUR, 2)])
    for tick in range(3):  # the lookups are cached between refreshes: the same each time
        refresh(HOUR + timedelta(minutes=3, seconds=30 * tick))
        outcomes = current(platform, "select outcome, events from staging.event_outcomes "
                                     "where hour = '2026-11-20 10:00' order by outcome")
        assert outcomes == [{"outcome": "duplicate", "events": 4},
                            {"outcome": "kept", "events": 2 * PER_MINUTE}]
    # A re-run of the earlier hour writes its file anew: it is looked up from the new one.
    platform.run_hours(f"{earlier:%Y-%m-%d-%H}:00")
    land(platform, HOUR + timedelta(minutes=2), 1, "more")
    refresh(HOUR + timedelta(minutes=5))
    assert len(list((platform.lake.live.root / "id_digests").glob("*.parquet"))) == 1
    assert current(platform, "select sum(events) as events from staging.event_outcomes "
                             "where outcome = 'duplicate'") == [{"events": 4}]


PAGE = """(() => {
    const banner = document.getElementById("provisional");
    const strip = document.getElementById("pulse");
    const day = document.querySelector("select[name=day] option[selected]");
    return {banner: banner && banner.textContent, day: day && day.value,
            asOf: strip && strip.dataset.asOf,
            pulse: strip && strip.querySelector("[data-col=as-of]").textContent};
})()"""


def test_the_dashboard_shows_today_provisional_and_the_stream_pushes_each_refresh(
    platform, tmp_path,
):
    platform.run_reference()
    for hour in range(8, 10):
        land(platform, HOUR.replace(hour=hour), 60, f"history-{hour}")
    platform.run_hours("2026-11-20-08:00", "2026-11-20-09:00")
    land(platform, HOUR, 20, "healthy")
    land(platform, HOUR + timedelta(minutes=20), 5, "outage", failing=True)
    refresh(HOUR + timedelta(minutes=25, seconds=5))

    browser = Browser(tmp_path / "chromium")
    try:
        with serve_asgi(create_app(pulse_poll_seconds=0.2)) as url:
            stream = Stream(f"{url}/api/pulse/stream")
            try:
                first = stream.next_pulse()
                assert first["provisional"] is True
                assert first["as_of"] == "2026-11-20T10:25:05+00:00"
                # The next refresh reaches the subscriber without its asking.
                land(platform, HOUR + timedelta(minutes=25), 1, "more", failing=True)
                refresh(HOUR + timedelta(minutes=26, seconds=5))
                started = time.monotonic()
                pushed = stream.next_pulse()
                assert time.monotonic() - started < 120
                assert pushed["as_of"] == "2026-11-20T10:26:05+00:00"
            finally:
                stream.close()

            browser.open(f"{url}/")
            shown = browser.wait_for(f"(p => p.asOf && p)({PAGE})")
            # The latest day with figures is the default one, and it says it is provisional.
            assert shown["day"] == "2026-11-20"
            assert shown["banner"].startswith("Provisional: 2026-11-20 has hours no exact run "
                                              "has read yet (from 10:00 UTC)")
            assert "as of 2026-11-20 10:26:05 UTC" in shown["banner"]
            assert shown["pulse"].endswith("(provisional)")
            assert browser.evaluate("document.getElementById('mood-summary').textContent"
                                    ).startswith("Mood as of 2026-11-20 10:26 UTC (provisional):")
            ARTIFACTS.mkdir(exist_ok=True)
            shot = browser.call("Page.captureScreenshot", format="png")
            (ARTIFACTS / "dashboard-live.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()


def test_a_refresh_that_cannot_be_written_leaves_the_mood_judged_on_the_exact_hours(
    platform, monkeypatch, capsys,
):
    platform.run_reference()
    land(platform, HOUR - timedelta(hours=1), 60, "exact")
    platform.run_hours("2026-11-20-09:00")
    land(platform, HOUR, 5, "open")
    # A file where the provisional lake's folder would be: nothing under it can be written.
    platform.lake.live.root.parent.mkdir(parents=True, exist_ok=True)
    platform.lake.live.root.write_text("not a folder")
    monkeypatch.setattr(service_mood, "utc_now", lambda: datetime(2026, 11, 20, 10, 5, 30,
                                                                   tzinfo=UTC))
    with build_sensor_context(instance=platform.instance, resources=RESOURCES) as context:
        result = service_mood.service_mood_sensor(context)
    assert "mood as of 2026-11-20 10:00 UTC" in result.skip_message
    assert "the open hours could not be refreshed" in capsys.readouterr().err
