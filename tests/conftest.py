"""Fixtures every test folder shares; each folder's conftest adds its own servers."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform import Platform, make_platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with make_platform(tmp_path) as made:
        yield made
