"""Assets, groups, checks and their severities, jobs, schedules and sensors, as committed."""

import json
from pathlib import Path

from tests.telemetry_assets.definitions_snapshot import snapshot

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def test_the_code_location_has_the_committed_shape():
    expected = json.loads(SNAPSHOT.read_text())
    actual = json.loads(json.dumps(snapshot()))
    for part in ("assets", "checks", "jobs", "schedules", "sensors"):
        assert actual[part] == expected[part], (
            f"{part} differ from {SNAPSHOT.name}; if the change is deliberate, regenerate it "
            "with `python -m tests.telemetry_assets.definitions_snapshot`"
        )
