"""The Dagster UI, started by each command users start it with, for the module that uses it
(test_ui.py): once each, and stopped when that module ends."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.telemetry_assets.dagster_ui import serving_ui


@pytest.fixture(scope="module")
def dg_dev(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """`dg dev`, as `make ui` runs it: (port, log path)."""
    dg = Path(sys.executable).with_name("dg")
    with serving_ui([str(dg), "dev"], tmp_path_factory.mktemp("dg_dev")) as served:
        yield served


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """`dagster dev -w workspace.yaml`, which other tools rely on: (port, log path)."""
    dagster = Path(sys.executable).with_name("dagster")
    with serving_ui([str(dagster), "dev", "-w", "workspace.yaml"],
                    tmp_path_factory.mktemp("dagster_dev")) as served:
        yield served
