"""The pulse where people look: `telemetry pulse`, the dashboard's /api/pulse and its event
stream, and the page's pulse strip kept current by that stream in a real browser."""

import base64
import http.client
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from telemetry_assets.dashboard.server import create_app
from telemetry_assets.mood.burn_rates import MoodPolicy
from telemetry_assets.mood.pulse import current_pulse
from telemetry_synth import generate_landing
from tests.helpers import REPO, serve_asgi
from tests.telemetry_assets.dashboard.browser import Browser
from tests.telemetry_assets.dashboard.test_dashboard import ARTIFACTS

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def processed(platform, hours: int, days: int = 0):  # type: ignore[no-untyped-def]
    """Generated traffic from 2026-11-20 00:00, its first `hours` hours and `days` days run."""
    generate_landing(platform.settings.landing_dir, platform.settings.reference_dir, DAY,
                     DAY.replace(day=21), events_per_hour=600, seed=5, files_per_hour=1)
    platform.run_reference()
    platform.run_hours(*[f"2026-11-20-{hour:02d}:00" for hour in range(hours)])
    if days:
        platform.run_days("2026-11-20")
    return platform


@pytest.fixture
def nine_hours(platform):
    return processed(platform, 9)


def expected_pulse(platform) -> dict:  # type: ignore[no-untyped-def]
    return platform.lake.read(lambda con: current_pulse(con, MoodPolicy())).value.as_json()


class Stream:
    """A subscriber to a Server-Sent Events stream: one `pulse` event at a time."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.connection.request("GET", parts.path, headers={"Accept": "text/event-stream"})
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type").startswith("text/event-stream")

    def next_pulse(self) -> dict:
        event = None
        while True:
            line = self.response.fp.readline().decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "pulse":
                return json.loads(line.split(":", 1)[1])

    def close(self) -> None:
        self.connection.close()


def test_the_api_and_the_stream_serve_the_pulse_and_push_each_change(nine_hours):
    platform = nine_hours
    with serve_asgi(create_app(pulse_poll_seconds=0.2)) as url:
        connection = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port)
        connection.request("GET", "/api/pulse")
        answer = connection.getresponse()
        assert answer.status == 200
        served = json.loads(answer.read())
        assert served == expected_pulse(platform)
        assert served["as_of"] == "2026-11-20T09:00:00+00:00"
        assert served["overall"]["text"].startswith("Overall: ")

        stream = Stream(f"{url}/api/pulse/stream")
        try:
            assert stream.next_pulse() == served
            # A new hour processed: the subscriber is told, without asking again.
            started = time.monotonic()
            platform.run_hours("2026-11-20-09:00")
            pushed = stream.next_pulse()
            assert time.monotonic() - started < 60
            assert pushed["as_of"] == "2026-11-20T10:00:00+00:00"
            assert pushed == expected_pulse(platform)
        finally:
            stream.close()


@pytest.fixture
def published_day(platform):
    return processed(platform, 24, days=1)


STRIP = """(() => {
    const strip = document.getElementById("pulse");
    return strip && {source: strip.dataset.source, asOf: strip.dataset.asOf,
                     lines: [...strip.querySelectorAll("li")].map(li => li.textContent)};
})()"""


def test_the_page_keeps_its_pulse_current_in_chromium(published_day, tmp_path):
    platform = published_day
    expected = expected_pulse(platform)
    browser = Browser(tmp_path / "chromium")
    try:
        with serve_asgi(create_app(pulse_poll_seconds=0.2)) as url:
            browser.open(f"{url}/")
            # Rewritten by the page's script from what /api/pulse answered.
            strip = browser.wait_for(f"(s => s && s.source === 'live' && s)({STRIP})")
            assert strip["asOf"] == expected["as_of"] == "2026-11-21T00:00:00+00:00"
            assert strip["lines"][0] == expected["overall"]["text"]
            assert strip["lines"][1:] == [s["text"] for s in expected["scenarios"]][:6]

            # The next hour processed while the page is open: it changes without a reload.
            generate_landing(platform.settings.landing_dir, platform.settings.reference_dir,
                             DAY.replace(day=21), DAY.replace(day=21, hour=1),
                             events_per_hour=600, seed=6, files_per_hour=1)  # fmt: skip
            browser.evaluate("window.notReloaded = true")
            platform.run_hours("2026-11-21-00:00")
            expected = expected_pulse(platform)
            strip = browser.wait_for(
                f"(s => s && s.asOf === {json.dumps(expected['as_of'])} && s)({STRIP})")
            assert browser.evaluate("window.notReloaded") is True
            assert strip["lines"][0] == expected["overall"]["text"]
            ARTIFACTS.mkdir(exist_ok=True)
            shot = browser.call("Page.captureScreenshot", format="png")
            (ARTIFACTS / "dashboard-pulse.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()


def test_telemetry_pulse_prints_lines_and_json(nine_hours):
    expected = expected_pulse(nine_hours)
    command = [sys.executable, "-m", "telemetry_cli", "pulse"]
    lines = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert lines.returncode == 0, lines.stderr
    printed = lines.stdout.splitlines()
    assert printed[0] == "Pulse as of 2026-11-20 09:00 UTC:"
    assert printed[-1] == f"  {expected['overall']['text']}"
    assert [line.strip() for line in printed[1:-1]] == [s["text"] for s in expected["scenarios"]]
    as_json = subprocess.run([*command, "--json"], cwd=REPO, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert json.loads(as_json.stdout) == expected


def test_telemetry_pulse_without_data_says_so(platform):
    result = subprocess.run([sys.executable, "-m", "telemetry_cli", "pulse"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert "no pulse yet" in result.stderr and "Traceback" not in result.stderr
