"""A throwaway platform per test: its own data directory, warehouse and Dagster instance."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from telemetry_assets.resources import TelemetryStore
from telemetry_cli.launcher import run_job_range, run_reference
from telemetry_core.settings import Settings
from tests.helpers import rows, write_reference


@dataclass
class Platform:
    settings: Settings
    instance: DagsterInstance

    @property
    def lake(self):
        return TelemetryStore().lake

    def run_reference(self) -> str:
        return run_reference(self.instance)

    def run_hours(self, *keys: str) -> str:
        return run_job_range(self.instance, "hourly_pipeline", list(keys))

    def run_days(self, *keys: str) -> str:
        return run_job_range(self.instance, "daily_pipeline", list(keys))

    def query(self, sql: str) -> list[dict]:
        with self.lake.warehouse(read_only=True) as con:
            return rows(con, sql)


@contextmanager
def make_platform(root: Path) -> Iterator[Platform]:
    """A platform under `root`; the environment is restored afterwards."""
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TELEMETRY_DATA_DIR", str(root / "data"))
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        for name in ("TELEMETRY_LANDING_DIR", "TELEMETRY_REFERENCE_DIR", "TELEMETRY_LAKE_DIR",
                     "TELEMETRY_DUCKDB_PATH"):
            patch.delenv(name, raising=False)
        settings = Settings.from_env()
        write_reference(settings.reference_dir)
        with DagsterInstance.get() as instance:
            yield Platform(settings, instance)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with make_platform(tmp_path) as made:
        yield made
