"""Fixtures every test folder shares; each folder's conftest adds its own servers."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import HOUR_10, hostile_events, write_hostile_reference, write_landing
from tests.platform import Platform, make_platform


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (`minutes` marks them): pytest-xdist hands a module to whichever
    worker is free, in this order (`make test` keeps it with --no-loadscope-reorder), and a
    long module handed out last would run alone at the end."""
    def minutes(item: pytest.Item) -> float:
        marker = item.get_closest_marker("minutes")
        return marker.args[0] if marker else 0

    items.sort(key=minutes, reverse=True)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with make_platform(tmp_path) as made:
        yield made


@pytest.fixture
def hostile_day(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    """2026-11-20 published for the HOSTILE scenarios, each breaching in its hour 10 (judged
    from 5 requests a window on)."""
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "5")
    write_hostile_reference(platform.settings.reference_dir)
    write_landing(platform.settings.landing_dir, HOUR_10.start, "hostile",
                  hostile_events(HOUR_10.start))
    platform.run_reference()
    platform.run_hours(*[f"2026-11-20-{hour:02d}:00" for hour in range(24)])
    platform.run_days("2026-11-20")
    return platform
