"""A generated day publishes the same figures as the committed snapshot, whether its hours run
as one range run, as a run per partition, or again (see published_snapshot.py)."""

import json

import pytest

from tests.helpers import REPO
from tests.telemetry_assets.published_snapshot import digest, land_the_day

pytestmark = pytest.mark.minutes(2)

SNAPSHOT = json.loads((REPO / "tests/telemetry_assets/published_snapshot.json").read_text())
HOURS = [f"2026-11-20-{hour:02d}:00" for hour in range(24)]


def assert_is_the_snapshot(found: dict) -> None:
    assert found.keys() == SNAPSHOT.keys()
    for table, expected in SNAPSHOT.items():
        assert (found[table]["rows"], found[table]["exact_sha256"]) == (
            expected["rows"], expected["exact_sha256"]), table
        assert found[table]["sums"] == pytest.approx(expected["sums"], rel=1e-9), table


def test_range_run_run_per_partition_and_rerun_publish_the_snapshot(platform, tmp_path):
    land_the_day(platform)
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days("2026-11-20")
    assert_is_the_snapshot(digest(platform))

    # The same runs again, over what they wrote: nothing moves.
    platform.run_hours(*HOURS)
    platform.run_days("2026-11-20")
    assert_is_the_snapshot(digest(platform))

    # From an empty lake, an hour per run.
    platform.lake.root.rename(tmp_path / "lake-of-the-range-run")
    platform.run_reference()
    for key in HOURS:
        platform.run_hours(key)
    platform.run_days("2026-11-20")
    assert_is_the_snapshot(digest(platform))
