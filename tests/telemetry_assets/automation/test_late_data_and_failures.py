"""The late-data and run-failure sensors, evaluated without a daemon against a real instance."""

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEvent,
    DagsterEventType,
    DagsterRunStatus,
    build_run_status_sensor_context,
    build_sensor_context,
)

from telemetry_assets.automation.late_data import CLOCK_MARGIN_S, LateDataCursor
from telemetry_assets.automation.run_failure import failure_report, run_failure_webhook
from telemetry_assets.dashboard.server import create_app
from telemetry_assets.definitions import defs
from telemetry_assets.resources import RESOURCES
from telemetry_assets.revisions import revisions_of
from telemetry_cli.launcher import RunFailed
from telemetry_cli.main import main
from telemetry_core.annotations import AnnotationStore
from tests.events import wire_event
from tests.helpers import serve_asgi, write_landing
from tests.platform import run_requested

REPOSITORY = defs.get_repository_def()
# The sensor looks back from the real clock, so the test's day is yesterday, whatever the date.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
DAY_KEY = f"{DAY:%Y-%m-%d}"
HOURS = [f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)]
HOUR = DAY.replace(hour=10)
HOUR_KEY = HOURS[10]


def at(minute: int) -> str:
    return f"{HOUR:%Y-%m-%dT%H}:{minute:02d}:00.000Z"


def evaluate(platform, cursor: str | None):
    with build_sensor_context(
        instance=platform.instance, cursor=cursor, repository_def=REPOSITORY,
        resources=RESOURCES,
    ) as context:
        return REPOSITORY.get_sensor_def("late_landing_files").evaluate_tick(context)


def targets(data) -> list[tuple[str, str]]:
    return [(request.job_name, request.partition_key) for request in data.run_requests]


def settle(path) -> None:
    """Wait until a file is older than the sensor's clock margin, as a file landed well before
    a run would be."""
    time.sleep(max(0.0, path.stat().st_ctime + CLOCK_MARGIN_S + 0.05 - time.time()))


def day_totals(platform) -> tuple[int, int]:
    (row,) = platform.query(
        "select sum(total_requests) as total, sum(successful_requests) as ok "
        f"from published.scenario_daily where date = date '{DAY_KEY}'")
    return row["total"], row["ok"]


def test_late_file_reruns_its_hour_then_its_day_and_counts_once(platform):
    landing = platform.settings.landing_dir
    on_time = [wire_event(f"a{i}", time=at(i), status=0 if i else 9) for i in range(3)]
    settle(write_landing(landing, HOUR, "batch-1", on_time))
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days(DAY_KEY)
    assert day_totals(platform) == (3, 2)

    quiet = evaluate(platform, None)
    assert quiet.run_requests == [] and "no landing file arrived" in quiet.skip_message

    late = [wire_event("b1", time=at(40)), wire_event("b2", time=at(41), status=7),
            wire_event("a1", time=at(1))]  # a replay of an event already counted
    write_landing(landing, HOUR, "late-batch", late)
    hour = evaluate(platform, quiet.cursor)
    assert targets(hour) == [("hourly_pipeline", HOUR_KEY)]
    (request,) = hour.run_requests
    assert request.tags["telemetry/late_files"] == "1"
    assert request.tags["telemetry/newest_late_file"] == "late-batch.jsonl"
    assert request.tags["dagster/sensor_name"] == "late_landing_files"
    # Until the hour has run again the day would read the old hour: it is not requested yet.
    assert targets(evaluate(platform, quiet.cursor)) == [("hourly_pipeline", HOUR_KEY)]
    # The charts say why the hour moved, once, however often the sensor noticed it.
    (noted,) = AnnotationStore(platform.settings.lake_dir).between(DAY, DAY + timedelta(days=1))
    assert (noted.kind, noted.scope, noted.starts_at, noted.ends_at) == (
        "late_data", "all", HOUR.replace(tzinfo=None), HOUR.replace(tzinfo=None, hour=11))
    assert "1 landing file(s) arrived after 10:00" in noted.text
    assert "late-batch.jsonl" in noted.text and noted.source == "platform:late_landing_files"
    assert platform.instance.get_run_by_id(run_requested(platform.instance, request)).is_success
    assert day_totals(platform) == (3, 2)

    day = evaluate(platform, hour.cursor)
    assert targets(day) == [("daily_pipeline", DAY_KEY)]
    assert platform.instance.get_run_by_id(
        run_requested(platform.instance, day.run_requests[0])).is_success

    assert day_totals(platform) == (5, 3)
    # Why it moved: the revision names the late file, its hour and its 3 events (one of
    # them a replay, counted once), with the availability before and after.
    (revision,) = revisions_of(platform.settings.lake_dir, DAY.date())
    assert revision["scenario_id"] == "checkout.quote"
    assert (revision["total_requests_before"], revision["total_requests"]) == (3, 5)
    assert revision["availability_pct_before"] == pytest.approx(100 * 2 / 3)
    assert revision["availability_pct"] == pytest.approx(60.0)
    assert revision["hours_rerun"] == "10:00"
    (late_file,) = json.loads(revision["files"])
    assert late_file["file"].endswith("late-batch.jsonl") and late_file["change"] == "new"
    assert late_file["hour"] == f"{DAY_KEY}T10:00" and late_file["events"] == 3
    assert "new landing file late-batch.jsonl in 10:00 (3 events, +3)" in revision["reason"]
    explained = CliRunner().invoke(main, ["explain", "--date", DAY_KEY, "--scenario",
                                          "Checkout.Quote"])
    assert explained.exit_code == 0, explained.output
    for said in ("availability 66.6667 % → 60.0000 %", "requests 3 → 5", "failed 1 → 2",
                 "hours re-run: 10:00", "late-batch.jsonl (hour " + f"{DAY_KEY}T10:00): - → 3 "
                 "events"):
        assert said in explained.output, explained.output
    nothing = CliRunner().invoke(main, ["explain", "--date", DAY_KEY, "--scenario", "nope"])
    assert nothing.exit_code == 1 and "no revision recorded" in nothing.output
    # The dashboard says the day was revised, when, and because of what.
    with serve_asgi(create_app()) as url, urllib.request.urlopen(
            f"{url}/?day={DAY_KEY}", timeout=60) as answer:
        page = answer.read().decode()
    revised = page[page.index('<section class="wide" id="revisions">'):]
    revised = revised[:revised.index("</section>")]
    assert "1 change(s)" in revised and 'data-scenario="checkout.quote"' in revised
    assert "66.667" in revised and "60.000" in revised
    assert "new landing file late-batch.jsonl in 10:00 (3 events, +3)" in revised
    # The re-published day says how much its availability moved: 2/3 before, 3/5 after.
    (record,) = platform.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("scenario_daily"), asset_partitions=[DAY_KEY]),
        limit=1).records
    change = record.asset_materialization.metadata["max_availability_change_pct_points"]
    assert change.value == pytest.approx(100 * 2 / 3 - 60)
    # And, in the UI, why: the revision (rounded) and the day's annotations.
    metadata = record.asset_materialization.metadata
    assert "checkout.quote" in metadata["revision"].value and "66.6667" in metadata[
        "revision"].value
    assert "late\\_data" in metadata["annotations"].value  # Markdown-escaped
    (outcomes,) = platform.query(
        "select sum(events) filter (where outcome = 'duplicate') as duplicates, "
        "sum(events) filter (where outcome = 'kept') as kept from staging.event_outcomes")
    assert (outcomes["duplicates"], outcomes["kept"]) == (1, 5)
    done = evaluate(platform, day.cursor)
    assert done.run_requests == []


def test_files_of_an_hour_never_processed_are_left_to_the_schedule(platform):
    write_landing(platform.settings.landing_dir, HOUR, "batch-1", [wire_event(time=at(5))])
    data = evaluate(platform, None)
    assert data.run_requests == []
    assert LateDataCursor.parse(data.cursor).files_after > time.time() - 60


def test_cursor_never_passes_the_start_of_a_run_in_progress(platform):
    """A run in progress may have listed an hour's files before a late one landed, so files
    changed after its start must be judged again once it has finished."""
    job = defs.resolve_job_def("hourly_pipeline")
    run = platform.instance.create_run_for_job(job, tags={"dagster/partition": HOUR_KEY})
    started = time.time() - 30
    platform.instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=job.name), run.run_id,
        timestamp=started,
    )
    assert platform.instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    data = evaluate(platform, None)
    assert LateDataCursor.parse(data.cursor).files_after == pytest.approx(started)


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", received
    server.shutdown()
    server.server_close()


def failure_context(platform):
    """The context the daemon gives the failure sensor for a real failed run."""
    with pytest.raises(RunFailed) as failed:
        platform.run_days(DAY_KEY)  # no hour has run: fails without retries
    run = platform.instance.get_run_by_id(failed.value.run_id)
    (event,) = platform.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    return build_run_status_sensor_context(
        sensor_name="run_failure_webhook", dagster_instance=platform.instance,
        dagster_run=run, dagster_event=event.dagster_event, resources=RESOURCES,
    ).for_run_failure()


def test_failed_run_is_posted_to_the_webhook(platform, webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("TELEMETRY_FAILURE_WEBHOOK_URLS", url)
    monkeypatch.setenv("TELEMETRY_DAGSTER_UI_URL", "http://dagster.example:3000/")
    context = failure_context(platform)
    run_failure_webhook(context)
    (payload,) = received
    details = payload["details"]
    assert details["job"] == "daily_pipeline" and details["run_id"] == context.dagster_run.run_id
    assert details["partitions"] == f"{DAY_KEY}...{DAY_KEY}"
    assert "has not been materialized" in details["error"]
    assert details["failed_steps"][0]["step"] in ("daily_aggregate", "daily_latency")
    assert details["run_url"] == f"http://dagster.example:3000/runs/{context.dagster_run.run_id}"
    # Slack shows `text`: it must say what failed and where, on its own.
    assert payload["text"].startswith(f"Dagster run of daily_pipeline for {DAY_KEY}...{DAY_KEY}")
    assert "has not been materialized" in payload["text"]


def test_failure_report_that_cannot_be_delivered_fails_the_tick(platform, monkeypatch):
    monkeypatch.setenv("TELEMETRY_FAILURE_WEBHOOK_URLS", "http://127.0.0.1:9/nothing-listens")
    with pytest.raises(RuntimeError, match="could not report the failed run"):
        run_failure_webhook(failure_context(platform))


def test_without_a_webhook_a_failure_is_an_annotation_only(platform, monkeypatch):
    monkeypatch.delenv("TELEMETRY_FAILURE_WEBHOOK_URLS", raising=False)
    monkeypatch.setenv("TELEMETRY_DAGSTER_UI_URL", "http://dagster.example:3000")
    context = failure_context(platform)
    assert run_failure_webhook(context) is None
    run_failure_webhook(context)  # a second tick about the same run notes nothing new
    store = AnnotationStore(platform.settings.lake_dir)
    (noted,) = store.between(datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1),
                             datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1))
    assert noted.kind == "run_failed" and noted.source == "platform:run_failure"
    assert noted.text.startswith(f"run of daily_pipeline for {DAY_KEY}...{DAY_KEY} failed: ")
    assert "has not been materialized" in noted.text
    assert noted.link == f"http://dagster.example:3000/runs/{context.dagster_run.run_id}"


def test_failure_report_escapes_the_error_for_slack_and_keeps_its_link(platform):
    (platform.settings.reference_dir / "scenarios.csv").write_text(
        "scenario_id,scenario_name,service,slo_target_pct,stid\n"
        "<!channel>,a,s,99,1\n<!channel>,b,s,99,2\n")
    with pytest.raises(RunFailed) as failed:
        platform.run_reference()
    run = platform.instance.get_run_by_id(failed.value.run_id)
    (event,) = platform.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="run_failure_webhook", dagster_instance=platform.instance,
        dagster_run=run, dagster_event=event.dagster_event, resources=RESOURCES,
    ).for_run_failure()
    report = failure_report(context, "http://dagster.example:3000/")
    assert "(value '<!channel>')" in report["details"]["error"]
    text = report["text"]
    assert "(value '&lt;!channel&gt;')" in text and "<!channel>" not in text
    # The one deliberate link stays a link.
    assert text.endswith(f" <http://dagster.example:3000/runs/{run.run_id}|run {run.run_id[:8]}>")
