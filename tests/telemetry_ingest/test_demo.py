"""examples/demo_service.py against the receiver: every handled request lands as one event."""

import json
import os
import subprocess
import sys

from tests.telemetry_ingest.servers import REPO, TOKEN, Receiver, landed_lines


def test_demo_service_events_land(receiver: Receiver) -> None:
    command = [sys.executable, "examples/demo_service.py", "--endpoint", receiver.url,
               "--token", TOKEN, "--requests", "200"]  # fmt: skip
    # As if the package were installed: a script's own folder, not the repo, is on sys.path.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "200 events accepted" in result.stdout

    events = [json.loads(line) for line in landed_lines(receiver.landing_dir)]
    assert len(events) == 200
    scenarios = {e["data"]["cC"].split(";")[0] for e in events}
    assert scenarios == {
        "ms.b.tel.scenario=checkout.purchase_quote",
        "ms.b.tel.scenario=checkout.place_order",
    }
    assert {e["data"]["baseData"]["requestType"] for e in events} == {"GET", "POST"}
    assert all(e["ext"]["cloud"]["role"] == "quote-service" for e in events)
