"""The dashboard tests' fixtures: a generated day published by the real pipeline, served."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from telemetry_assets.dashboard.server import create_app
from telemetry_synth import generate_landing
from tests.helpers import serve_asgi

DAY = datetime(2026, 11, 20, tzinfo=UTC)
SHIPPED_REFERENCE = Path(__file__).resolve().parents[3] / "data" / "reference"


@pytest.fixture
def published_day(platform):
    # The shipped reference (50 scenarios) makes a page like the one people see.
    shutil.copytree(SHIPPED_REFERENCE, platform.settings.reference_dir, dirs_exist_ok=True)
    summary = generate_landing(
        platform.settings.landing_dir, platform.settings.reference_dir, DAY,
        DAY.replace(day=21), events_per_hour=2_000, seed=11, files_per_hour=2,
    )
    # Files no hour reads: in no hour folder, named like no landing file, before the partitions.
    events = platform.settings.landing_dir / "events"
    (events / "stray.jsonl").write_text("{}\n")
    (events / "date=2026-11-20" / "hour=10" / "notes.txt").write_text("{}\n")
    (events / "date=1970-01-01" / "hour=00").mkdir(parents=True)
    (events / "date=1970-01-01" / "hour=00" / "epoch.jsonl").write_text("{}\n")
    platform.run_reference()
    platform.run_hours(*[f"2026-11-20-{hour:02d}:00" for hour in range(24)])
    platform.run_days("2026-11-20")
    return summary


@pytest.fixture
def served(platform, monkeypatch):
    # A tenth of the demo's traffic: a lower minimum lets its 5-minute windows be judged.
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "5")
    with serve_asgi(create_app()) as url:
        yield url
