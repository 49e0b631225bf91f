"""The demo's first evaluation: one grouped message per route, where the plain webhooks get a
post per change (the storm the routes were made to end)."""

import shutil
from datetime import UTC, datetime

from telemetry_assets.mood.outbox import read_notifications
from telemetry_synth import generate_landing
from tests.helpers import REPO
from tests.telemetry_assets.mood.test_routes import Receiver, tick

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def test_the_first_evaluation_of_a_generated_day_sends_one_message_per_route(
        platform, monkeypatch, tmp_path):
    shutil.copytree(REPO / "data" / "reference", platform.settings.reference_dir,
                    dirs_exist_ok=True)
    generate_landing(platform.settings.landing_dir, platform.settings.reference_dir, DAY,
                     DAY.replace(day=21), events_per_hour=2_000, seed=11, files_per_hour=2)
    platform.run_reference()
    platform.run_hours(*[f"2026-11-20-{hour:02d}:00" for hour in range(24)])

    receiver = Receiver()
    # A tenth of the demo's traffic: a lower minimum lets its 5-minute windows be judged.
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "5")
    monkeypatch.setenv("TELEMETRY_MOOD_WEBHOOKS", f"{receiver.url}/plain")
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
routes:
  - name: everything
    sinks: [{{type: webhook, url: "{receiver.url}/everything"}}]
  - name: pages
    match: {{severity: page}}
    sinks: [{{type: webhook, url: "{receiver.url}/pages"}}]
""")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(routes))
    tick(platform, None)

    changes = [row for row in read_notifications(platform.lake) if row["partner_id"] is None]
    assert len(changes) >= 3, changes
    assert len(receiver.bodies("/plain")) == len(changes)
    # One message, each changed scenario in it once, at its latest state (a scenario that went
    # degraded then breaching within the evaluation is said breaching).
    latest = {row["scenario_id"]: row["state"] for row in changes}
    (everything,) = receiver.bodies("/everything")
    assert {c["scenario_id"]: c["state"] for c in everything["changes"]} == latest
    assert len(everything["changes"]) == len(latest)
    pages = receiver.bodies("/pages")
    # The demo's day ends with at least one scenario breaching.
    assert len(pages) == 1 and pages[0]["changes"]
    assert {c["state"] for c in pages[0]["changes"]} == {"breaching"}
    receiver.close()
