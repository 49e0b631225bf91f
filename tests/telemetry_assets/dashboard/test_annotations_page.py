"""Annotations on the dashboard, in headless Chromium: markers at their minutes on the zoomed
scenario's availability chart, the day's list, and one posted to the receiver after the page was
opened, there after a reload."""

import base64
import json
import urllib.request
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from telemetry_cli.main import main
from telemetry_core.annotations import AnnotationStore
from telemetry_ingest.app import create_app as create_receiver
from telemetry_ingest.settings import IngestSettings
from tests.helpers import serve_asgi
from tests.telemetry_assets.dashboard.browser import Browser
from tests.telemetry_assets.dashboard.conftest import DAY

# docs/dashboard-annotations.png is this picture, taken before the reload.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MARKERS = ("JSON.stringify((document.getElementById('minute_chart').data || [])"
           ".filter(t => t.name === 'annotations').flatMap(t => t.x))")
LISTED = ("JSON.stringify([...document.querySelectorAll('#annotations tr[data-annotation]')]"
          ".map(r => [r.dataset.annotationKind,"
          " r.querySelector('[data-col=start]').textContent.trim(),"
          " r.querySelector('[data-col=text]').textContent.trim()]))")


def annotate(*args: str) -> None:
    result = CliRunner().invoke(main, ["annotate", *args])
    assert result.exit_code == 0, result.output


def test_annotations_are_marked_on_the_chart_and_a_posted_one_appears_after_a_reload(
        platform, published_day, served, tmp_path):
    (first,) = platform.query(
        "select scenario_id, service from reference.scenarios order by scenario_id limit 1")
    scenario, service = first["scenario_id"], first["service"]
    other = platform.query(f"select service from reference.scenarios where service <> "
                           f"'{service}' limit 1")[0]["service"]
    annotate("--text", "checkout v1.2 deployed", "--kind", "deploy", "--scope",
             f"service:{service}", "--start", "2026-11-20T10:15:00Z")
    annotate("--text", "database failover", "--kind", "incident", "--scope",
             f"scenario:{scenario}", "--start", "2026-11-20T14:02:30Z",
             "--end", "2026-11-20T14:40:00Z", "--link", "https://tickets.example/INC-7")
    annotate("--text", "a freeze that began the day before", "--kind", "maintenance",
             "--start", "2026-11-19T22:00:00Z", "--end", "2026-11-20T01:00:00Z")
    annotate("--text", "another service's deploy", "--kind", "deploy", "--scope",
             f"service:{other}", "--start", "2026-11-20T09:00:00Z")

    url = f"{served}/?day=2026-11-20&days=7&scenario={scenario}"
    browser = Browser(tmp_path / "chromium")
    try:
        browser.open(url, height=1500)
        browser.wait_for("document.querySelector('#minute_chart .main-svg') !== null")
        # The platform noted the generated day's own trouble too (its held-back scenarios):
        # everyone's, at the day's start.
        platform_notes = [a for a in AnnotationStore(platform.settings.lake_dir).between(
            DAY, DAY + timedelta(days=1)) if a.source.startswith("platform:")]
        assert "held_back" in {a.kind for a in platform_notes}
        assert all(a.scope == "all" for a in platform_notes)
        # On the chart: this scenario's, its service's and everyone's, clipped to the day.
        assert sorted(json.loads(browser.evaluate(MARKERS))) == sorted(
            ["2026-11-20T00:00:00", "2026-11-20T10:15:00", "2026-11-20T14:02:30"]
            + ["2026-11-20T00:00:00"] * len(platform_notes))
        # In the list: all of them, the other service's included, oldest first.
        listed = json.loads(browser.evaluate(LISTED))
        assert len(listed) == 4 + len(platform_notes)
        assert [row for row in listed if row[0] in ("deploy", "incident", "maintenance")] == [
            ["maintenance", "2026-11-19 22:00", "a freeze that began the day before"],
            ["deploy", "09:00", "another service's deploy"],
            ["deploy", "10:15", "checkout v1.2 deployed"],
            ["incident", "14:02", "database failover"],
        ]
        assert browser.evaluate(
            "document.querySelector('#annotations a').getAttribute('href')") == \
            "https://tickets.example/INC-7"
        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        assert len(shot) > 50_000
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard-annotations.png").write_bytes(shot)

        settings = IngestSettings(landing_dir=platform.settings.landing_dir,
                                  tokens=frozenset({"t0ken"}),
                                  lake_dir=platform.settings.lake_dir,
                                  reference_dir=platform.settings.reference_dir)
        with serve_asgi(create_receiver(settings)) as receiver:
            request = urllib.request.Request(
                f"{receiver}/v1/annotations", method="POST",
                data=json.dumps({"start": "2026-11-20T18:30:00Z", "kind": "deploy",
                                 "scope": f"scenario:{scenario}",
                                 "text": "rolled back"}).encode(),
                headers={"Authorization": "Bearer t0ken", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 201
        browser.call("Page.reload")
        browser.wait_for("document.querySelectorAll('#annotations tr[data-annotation]')"
                         f".length === {len(listed) + 1}")
        browser.wait_for("document.querySelector('#minute_chart .main-svg') !== null")
        assert "2026-11-20T18:30:00" in json.loads(browser.evaluate(MARKERS))
        assert ["deploy", "18:30", "rolled back"] in json.loads(browser.evaluate(LISTED))
    finally:
        browser.close()
