"""A throwaway platform: its own data directory, warehouse and Dagster instance."""

import gc
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest

from telemetry_assets.jobs import RUN_KEY_TAG
from telemetry_assets.resources import TelemetryStore
from telemetry_cli.launcher import execute, run_job_range, run_reference
from telemetry_core.settings import Settings
from tests.helpers import REPO, rows, write_reference


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

    def run_whole_day(self, day: str) -> None:
        """Reference data, the day's 24 hours as one run, then the day: a day published."""
        self.run_reference()
        self.run_hours(*(f"{day}-{hour:02d}:00" for hour in range(24)))
        self.run_days(day)

    def query(self, sql: str) -> list[dict]:
        with self.lake.warehouse(read_only=True) as con:
            return rows(con, sql)


@contextmanager
def make_platform(root: Path) -> Iterator[Platform]:
    """A platform under `root`, with the product's Dagster instance settings; the environment
    is restored afterwards."""
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TELEMETRY_DATA_DIR", str(root / "data"))
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        for name in ("TELEMETRY_LANDING_DIR", "TELEMETRY_REFERENCE_DIR", "TELEMETRY_LAKE_DIR",
                     "TELEMETRY_DUCKDB_PATH"):
            patch.delenv(name, raising=False)
        settings = Settings.from_env()
        write_reference(settings.reference_dir)
        # Entering an instance sets Dagster's current defs-state storage (a context variable)
        # until it exits. A Dagster context an earlier test left open (its resources) resets
        # its own token whenever it is collected, which brings back the storage of a platform
        # long gone; collected now, it cannot do that in the middle of this platform's test.
        gc.collect()
        with DagsterInstance.get() as instance:
            yield Platform(settings, instance)


def run_requested(instance: DagsterInstance, request: RunRequest, job_name: str = "") -> str:
    """Execute a schedule's or sensor's run request in this process, as the daemon would launch
    it (partition, tags, run key); `job_name` names the target when the request does not."""
    tags = dict(request.tags)
    if request.run_key:
        tags[RUN_KEY_TAG] = request.run_key
    return execute(instance, request.job_name or job_name, tags,
                    partition_key=request.partition_key)


def rewrite_published_until(day: str, stop_file: str) -> None:
    """Rewrite a day's published files as a run does (temp file, rename) until `stop_file`
    exists, as fast as possible; write the number of rewrites to it."""
    from contextlib import closing
    from datetime import datetime

    import pyarrow.parquet as pq

    from telemetry_assets.resources import TelemetryStore
    from telemetry_assets.tables import PUBLISHED_TABLES
    from telemetry_core.sql import compute_connection

    lake = TelemetryStore().lake
    start = datetime.fromisoformat(day)
    stop = Path(stop_file)
    rewrites = 0
    with closing(compute_connection()) as con:
        frames = {table: pq.read_table(lake.partition_path(table, start))
                  for table in PUBLISHED_TABLES}
        while not stop.exists():
            for table, frame in frames.items():
                # Alternately all rows and all but the last: each file differs from the one
                # it replaces, as a re-run's after late data does.
                rows = frame if rewrites % 2 else frame.slice(0, max(1, frame.num_rows - 1))
                lake.write(table, start, con.from_arrow(rows))
                rewrites += 1
    stop.write_text(str(rewrites))
