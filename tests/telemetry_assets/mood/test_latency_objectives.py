"""A latency objective end to end: a generated week whose only incident is slowness pages on
the latency objective and not on availability, and its published attainment matches the raw
events within the bound it states."""

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from dagster import build_sensor_context

from telemetry_assets.automation import service_mood
from telemetry_assets.dashboard.server import create_app
from telemetry_assets.mood.outbox import read_notifications
from telemetry_assets.resources import RESOURCES
from telemetry_core.landing import hour_folder
from tests.helpers import serve_asgi
from tests.platform import make_platform
from tests.telemetry_assets.dashboard.test_dashboard import ARTIFACTS, PageReader, chromium

pytestmark = pytest.mark.minutes(1.5)

WEEK_START = datetime(2026, 11, 14)
DAYS = 7
# On the last day, from 09:00 for an hour, half the requests take 500-900 ms.
INCIDENT = datetime(2026, 11, 20, 9, 0)
PER_MINUTE = 20
THRESHOLD_MS = 300

SLOS_YAML = f"""\
objectives:
  - scenario: checkout.quote
    kind: latency
    threshold_ms: {THRESHOLD_MS}
    target_pct: 99
"""

# Every request succeeds. Latencies are 20-280 ms, but one request in 200 takes 297-300 ms,
# inside the log bucket that straddles the 300-ms threshold, so the bound is not empty; during
# the incident every other request is slow.
HOUR_SQL = """
copy (
    select
        'e-' || strftime(t, '%Y%m%d%H%M%S') || '-' || n as id,
        strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as time,
        {
            'baseType': 'Ms.Qos.IncomingServiceRequest',
            'cC': 'ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=contoso',
            'baseData': {
                'operationName': 'GetQuote', 'callerName': 'caller-app', 'requestType': 'GET',
                'latencyMs': case
                    when t >= $incident and t < $incident + interval 1 hour and n % 2 = 0
                        then 500.0 + (i * 37) % 400
                    when i % 200 = 7 then 297.0 + i % 4
                    else 20.0 + ((i * 7919) % 2600) / 10.0
                end,
                'requestStatus': 0
            }
        } as data,
        {'cloud': {'environment': 'prod', 'roleInstance': 'ri-1'}, 'sll': {'libVer': '5.2.1'}}
            as ext
    from (
        select
            i,
            i % $per_minute as n,
            cast($hour as timestamp) + to_seconds(cast(i // $per_minute * 60
                + (i % $per_minute) * 2 as bigint)) as t
        from range(60 * $per_minute) as r(i)
    )
) to '{path}' (format json)
"""


def land_week(landing_dir) -> None:  # type: ignore[no-untyped-def]
    with closing(duckdb.connect()) as con:
        for hours in range(DAYS * 24):
            hour = WEEK_START + timedelta(hours=hours)
            folder = hour_folder(landing_dir, hour)
            folder.mkdir(parents=True)
            con.execute(HOUR_SQL.replace("{path}", str(folder / "events.jsonl")),
                        {"hour": hour, "incident": INCIDENT, "per_minute": PER_MINUTE})


@pytest.fixture(scope="module")
def week(tmp_path_factory):  # type: ignore[no-untyped-def]
    with make_platform(tmp_path_factory.mktemp("latency")) as platform:
        (platform.settings.reference_dir / "slos.yaml").write_text(SLOS_YAML)
        land_week(platform.settings.landing_dir)
        platform.run_reference()
        hours = [f"{WEEK_START + timedelta(hours=h):%Y-%m-%d-%H:00}" for h in range(DAYS * 24)]
        platform.run_hours(*hours)
        platform.run_days(*(f"{WEEK_START + timedelta(days=d):%Y-%m-%d}" for d in range(DAYS)))
        yield platform


def test_the_objectives_table_holds_the_latency_objective_beside_availability(week):
    found = week.query("select scenario_id, objective, kind, threshold_ms, target_pct, subject "
                       "from reference.objectives where scenario_id = 'checkout.quote' "
                       "order by kind")
    assert found == [
        {"scenario_id": "checkout.quote", "objective": "availability", "kind": "availability",
         "threshold_ms": None, "target_pct": 99.5, "subject": "checkout.quote"},
        {"scenario_id": "checkout.quote", "objective": "latency-300ms", "kind": "latency",
         "threshold_ms": 300.0, "target_pct": 99.0, "subject": "checkout.quote/latency-300ms"},
    ]


def test_a_slow_hour_pages_on_the_latency_objective_and_not_on_availability(week, monkeypatch):
    def tick(now: datetime, cursor: str | None):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(service_mood, "utc_now", lambda: now)
        with build_sensor_context(instance=week.instance, cursor=cursor,
                                  resources=RESOURCES) as context:
            service_mood.service_mood_sensor(context)
            return context.cursor

    # Judged first at the end of the week, then over the days as if they were happening: the
    # sensor posts every change since its last judgement, each at the minute it happened.
    cursor = json.dumps({"as_of": f"{INCIDENT - timedelta(hours=2):%Y-%m-%dT%H:%M:%S}"})
    tick(datetime(2026, 11, 21, 0, 5, tzinfo=UTC), cursor)
    changes = [(row["scenario_id"], row["state"], row["as_of"])
               for row in read_notifications(week.lake)]
    latency = "checkout.quote/latency-300ms"
    assert [c for c in changes if c[0] == "checkout.quote"] == []
    states = [state for scenario, state, _ in changes if scenario == latency]
    assert states[0] == "breaching" and states[-1] != "breaching"
    # Half the requests over the threshold burn 50x, so the last hour holds 14.4x the budget
    # (14.4 % slow) after 0.144 / 0.5 of an hour, 17.3 minutes, less the few 297-300 ms requests
    # of the straddling bucket counted slow: the page fires then, well before the hour closes.
    first_page = min(as_of for scenario, state, as_of in changes
                     if scenario == latency and state == "breaching")
    assert first_page - INCIDENT in (timedelta(minutes=16), timedelta(minutes=17))
    (page,) = [row for row in read_notifications(week.lake)
               if row["scenario_id"] == latency and row["state"] == "breaching"]
    details = json.loads(page["payload"])["details"]
    assert details["objective"] == "latency" and details["latency_threshold_ms"] == 300
    assert "latency at or under 300 ms" in page["text"]


@pytest.mark.parametrize("day", ["2026-11-19", "2026-11-20"])
def test_the_published_latency_attainment_matches_the_raw_events_within_its_bound(week, day):
    (published,) = week.query(
        "select total_requests, good_requests, attainment_pct, attainment_error_pct, "
        f"objective_met from published.objective_daily where date = '{day}' "
        "and objective = 'latency-300ms'")
    files = str(week.settings.landing_dir / "events" / f"date={day}" / "*" / "*.jsonl")
    with closing(duckdb.connect()) as con:
        total, good = con.execute(
            "select count(*), count(*) filter (where data.baseData.latencyMs <= $threshold) "
            "from read_json($files, format = 'newline_delimited')",
            {"files": files, "threshold": THRESHOLD_MS}).fetchone()
    exact = 100.0 * good / total
    assert published["total_requests"] == total == 24 * 60 * PER_MINUTE
    # The bound is the share of the one bucket that straddles the threshold: here the
    # 297-300 ms requests, every 200th, so it is not vacuous, and it holds the exact share.
    assert 0 < published["attainment_error_pct"] <= 0.6
    assert abs(published["attainment_pct"] - exact) <= published["attainment_error_pct"]
    assert published["objective_met"] == (day != "2026-11-20")
    (availability,) = week.query(
        "select attainment_pct, attainment_error_pct from published.objective_daily "
        f"where date = '{day}' and objective = 'availability'")
    assert availability == {"attainment_pct": 100.0, "attainment_error_pct": 0.0}


def test_the_dashboard_shows_the_latency_objective_beside_the_scenarios(week, tmp_path):
    (published,) = week.query(
        "select attainment_pct, attainment_error_pct from published.objective_daily "
        "where date = '2026-11-20' and objective = 'latency-300ms'")
    with serve_asgi(create_app()) as url:
        page_url = f"{url}/?day=2026-11-20&days=7"
        ARTIFACTS.mkdir(exist_ok=True)
        chromium(tmp_path, page_url, f"--screenshot={ARTIFACTS / 'dashboard-objectives.png'}")
        page = PageReader()
        page.feed(chromium(tmp_path, page_url, "--dump-dom"))
    subject = "checkout.quote/latency-300ms"
    assert page.rows["objectives"] == [subject]
    assert page.cell("objectives", subject, "attainment_pct") == (
        f"{published['attainment_pct']:.3f}")
    assert page.cell("objectives", subject, "attainment_error_pct") == (
        f"{published['attainment_error_pct']:.3f}")
    # The mood table judges the objective beside the scenario's availability.
    assert {"checkout.quote", subject} <= set(page.rows["mood"])
    # The day's incident is the latency page, the only one.
    assert [row.split("#")[0] for row in page.rows["incidents"]] == [subject]
