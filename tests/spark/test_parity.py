"""Parity: the same generated day through the pipeline on DuckDB and on a real Spark standalone
cluster (TELEMETRY_ENGINE=spark), from the same landing files; every SQL stage's output equal
(integers exactly, floats within 1e-9 relative).

The day is the generator's, with its malformed lines, duplicates and unknown scenarios, plus
late events across an hour boundary and an outage.
"""

import logging
import math
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from telemetry_assets.tables import (
    DAILY_AGGREGATE,
    DAILY_LATENCY,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    LATENCY_PERCENTILES,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    OBJECTIVE_DAILY,
    RAW_EVENTS,
    REJECTED_EVENTS,
    SCENARIO_DAILY,
    SCENARIO_MINUTE,
    SCENARIO_PARTNER_DAILY,
    TRANSLATED,
    VALIDATED,
)
from telemetry_cli.launcher import RunFailed
from telemetry_synth import generate_landing
from tests.events import wire_event
from tests.helpers import write_landing, write_reference
from tests.platform import Platform, make_platform

pytestmark = pytest.mark.spark

DAY = datetime(2026, 11, 20, tzinfo=UTC)
# The stages an hourly run writes.
HOURLY_STAGES = (RAW_EVENTS, REJECTED_EVENTS, FILTERED_EVENTS, EVENT_OUTCOMES, MINUTE_AGGREGATE,
                 MINUTE_LATENCY)
# Every stage from raw ingest to published, with the quarantine and the exclusion counts.
SPARK_STAGES = (RAW_EVENTS, REJECTED_EVENTS, FILTERED_EVENTS, EVENT_OUTCOMES, MINUTE_AGGREGATE,
                MINUTE_LATENCY, DAILY_AGGREGATE, DAILY_LATENCY, TRANSLATED, VALIDATED,
                LATENCY_PERCENTILES, SCENARIO_DAILY, SCENARIO_PARTNER_DAILY, SCENARIO_MINUTE,
                OBJECTIVE_DAILY)


def edge_cases() -> list[dict]:
    """An outage minute, a replay across the hour boundary, an unknown scenario."""
    events = []
    for n in range(40):
        at = DAY + timedelta(hours=9, minutes=59, seconds=n)
        events.append(wire_event(event_id=f"edge-{n}", time=at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                 status=6 if n % 2 else 0))
    # The same ids again an hour later: duplicates within the horizon.
    late = [dict(e, time=(DAY + timedelta(hours=10, minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")) for e in events[:10]]
    unknown = [wire_event(event_id=f"unknown-{n}", time=(DAY + timedelta(hours=10, minutes=n))
                          .strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                          cc="ms.b.tel.scenario=nobody.knows;ms.b.tel.partner=contoso")
               for n in range(5)]
    return events + late + unknown


def publish_day(root: Path, landing: Path, **env: str) -> Path:
    """The day through the real pipeline under `root`, from a copy of `landing`; its lake."""
    with engine_platform(root, landing, **env) as platform:
        platform.run_whole_day(f"{DAY:%Y-%m-%d}")
        return platform.settings.lake_dir


@contextmanager
def engine_platform(root: Path, landing: Path, **env: str) -> Iterator[Platform]:
    root.mkdir()
    with make_platform(root) as platform, pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        shutil.copytree(landing, platform.settings.landing_dir, dirs_exist_ok=True)
        yield platform


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated day with its edge cases, as landing files."""
    root = tmp_path_factory.mktemp("generated")
    write_reference(root / "reference-for-generation")
    generate_landing(root / "landing", root / "reference-for-generation", DAY,
                     DAY + timedelta(days=1), events_per_hour=300, seed=5, files_per_hour=1,
                     malformed_rate=0.01)
    for hour in (9, 10):
        start = DAY + timedelta(hours=hour)
        write_landing(root / "landing", start, "edge", [
            e for e in edge_cases() if e["time"].startswith(f"{start:%Y-%m-%dT%H}")])
    return root / "landing"


@pytest.fixture(scope="module")
def duckdb_lake(tmp_path_factory: pytest.TempPathFactory, landing: Path) -> Path:
    return publish_day(tmp_path_factory.mktemp("on-duckdb") / "root", landing)


def column_sql(column: str) -> str:
    if column in ("file", "source_file"):
        return f"regexp_replace({column}, '^.*/landing/', '') as {column}"
    return f'"{column}"'


def table_rows(lake: Path, table, partitions: set[str] | None = None  # type: ignore[no-untyped-def]
               ) -> tuple[list[str], list[tuple]]:
    """The table's columns (name and type) and rows, in an order both engines' rows share:
    by every column but the floats (whose last digits depend on the order of a sum), then by
    the floats rounded."""
    files = sorted(str(p) for p in (lake / table.schema / table.name).glob("*/data.parquet")
                   if partitions is None or p.parent.name in partitions)
    assert files, f"{table.qualified_name} has no files in {lake}"
    relation = duckdb.read_parquet(files, union_by_name=True)
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    columns = sorted(types)
    # A landing file is named by its path, which differs between the two roots below `landing`.
    ordered = relation.select(", ".join(column_sql(c) for c in columns))
    floats = [i for i, c in enumerate(columns) if types[c] in ("DOUBLE", "FLOAT")]

    def order(row: tuple) -> tuple:
        exact = [(v is None, str(v)) for i, v in enumerate(row) if i not in floats]
        return (*exact, *((row[i] is None, round(row[i] or 0, 6)) for i in floats))

    return [f"{c} {types[c]}" for c in columns], sorted(ordered.fetchall(), key=order)


def same_value(left, right) -> bool:  # type: ignore[no-untyped-def]
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            return left is right
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)
    return left == right


def differences(duck: Path, spark: Path, table,  # type: ignore[no-untyped-def]
                partitions: set[str] | None = None) -> list[str]:
    columns, expected = table_rows(duck, table, partitions)
    spark_columns, found = table_rows(spark, table, partitions)
    if columns != spark_columns:
        return [f"{table.qualified_name}: columns {columns} on DuckDB, {spark_columns} on Spark"]
    if len(expected) != len(found):
        return [f"{table.qualified_name}: {len(expected)} rows on DuckDB, {len(found)} on Spark"]
    wrong = [(e, f) for e, f in zip(expected, found, strict=True)
             if not all(same_value(a, b) for a, b in zip(e, f, strict=True))]
    return [f"{table.qualified_name}: {len(wrong)} rows differ, e.g. {wrong[0]}"] if wrong else []


def test_a_generated_day_publishes_the_same_on_duckdb_and_on_a_spark_cluster(
        tmp_path, spark_cluster, landing, duckdb_lake):
    duck = duckdb_lake
    spark = publish_day(tmp_path / "spark", landing, TELEMETRY_ENGINE="spark",
                        TELEMETRY_SPARK_MASTER=spark_cluster.master_url)

    problems = [line for table in SPARK_STAGES
                for line in differences(duck, spark, table)]
    assert problems == []
    # Not a degenerate day: traffic, rejected lines, duplicates and unknown scenarios are there.
    columns, outcomes = table_rows(duck, EVENT_OUTCOMES)
    assert {row[columns.index("outcome VARCHAR")] for row in outcomes} >= {"kept", "duplicate"}
    assert table_rows(duck, REJECTED_EVENTS)[1]
    columns, validated = table_rows(duck, VALIDATED)
    assert "nobody.knows" in {row[columns.index("scenario_id VARCHAR")] for row in validated}
    # The work ran on both workers' executors, not in the driver alone.
    assert all(count >= 1 for count in spark_cluster.executors_per_worker()), \
        spark_cluster.executors_per_worker()


class _Progress(logging.Handler):
    """Sets `started` once `after` partitions of any stage have finished."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.done, self.started = after, 0, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "progress", None) is not None:
            self.done += 1
            if self.done >= self.after:
                self.started.set()


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
        tmp_path, caplog, spark_cluster, landing, duckdb_lake):
    """SIGKILL one worker (and its executors) while the hours run on the cluster: the run ends
    with the same figures, or fails and its re-run does. Runs after the parity test: the cluster
    is one worker short afterwards."""
    hours = [f"{DAY:%Y-%m-%d}-{hour:02d}:00" for hour in range(8, 12)]
    progress = _Progress(after=3)
    log = logging.getLogger("telemetry_assets.progress")
    caplog.set_level(logging.INFO, logger=log.name)
    log.addHandler(progress)
    killed: list[int] = []
    done_at_kill: list[int] = []

    def kill_when_started() -> None:
        if progress.started.wait(timeout=300):
            done_at_kill.append(progress.done)
            killed.extend(spark_cluster.kill_worker(1))

    killer = threading.Thread(target=kill_when_started)
    try:
        with engine_platform(tmp_path / "killed", landing, TELEMETRY_ENGINE="spark",
                             TELEMETRY_SPARK_MASTER=spark_cluster.master_url) as platform:
            platform.run_reference()
            killer.start()
            try:
                platform.run_hours(*hours)
                outcome = "completed"
            except RunFailed:
                outcome = "re-run"
            done_by_first_run = progress.done
            if outcome == "re-run":
                platform.run_hours(*hours)
            lake = platform.settings.lake_dir
    finally:
        log.removeHandler(progress)
        progress.started.set()
        killer.join()

    assert killed and spark_cluster.workers[1].returncode == -signal.SIGKILL, killed
    # Partitions finished after the kill: it hit the run, not its end.
    assert done_at_kill[0] < done_by_first_run or outcome == "re-run", (done_at_kill, outcome)
    partitions = {path.parent.name for path in (lake / RAW_EVENTS.schema / RAW_EVENTS.name)
                  .glob("*/data.parquet")}
    assert len(partitions) == len(hours)
    problems = [line for table in HOURLY_STAGES
                for line in differences(duckdb_lake, lake, table, partitions)]
    assert problems == [], outcome
