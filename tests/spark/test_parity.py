"""Parity: the same generated day through the pipeline on DuckDB and on a real Spark standalone
cluster (TELEMETRY_ENGINE=spark), from the same landing files; every SQL stage's output equal
(integers exactly, floats within 1e-9 relative).

The day is the generator's, with its malformed lines, duplicates and unknown scenarios, plus
late events across an hour boundary and an outage.
"""

import logging
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
from telemetry_core.landing import hour_folder
from telemetry_synth import generate_landing
from tests.events import wire_event
from tests.helpers import write_landing, write_reference
from tests.platform import Platform, make_platform

# A day on DuckDB and on the cluster, and the cluster losing a worker.
pytestmark = [pytest.mark.spark, pytest.mark.minutes(6)]

DAY = datetime(2026, 11, 20, tzinfo=UTC)
# An hour without a landing file: every stage still writes its (empty) partition.
QUIET_HOUR = 3
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
    """The generated day with its edge cases, as landing files, and an hour with none."""
    root = tmp_path_factory.mktemp("generated")
    write_reference(root / "reference-for-generation")
    generate_landing(root / "landing", root / "reference-for-generation", DAY,
                     DAY + timedelta(days=1), events_per_hour=300, seed=5, files_per_hour=1,
                     malformed_rate=0.01)
    for hour in (9, 10):
        start = DAY + timedelta(hours=hour)
        write_landing(root / "landing", start, "edge", [
            e for e in edge_cases() if e["time"].startswith(f"{start:%Y-%m-%dT%H}")])
    shutil.rmtree(hour_folder(root / "landing", DAY + timedelta(hours=QUIET_HOUR)))
    return root / "landing"


@pytest.fixture(scope="module")
def duckdb_lake(tmp_path_factory: pytest.TempPathFactory, landing: Path) -> Path:
    return publish_day(tmp_path_factory.mktemp("on-duckdb") / "root", landing)


def quoted(column: str) -> str:
    return f'"{column}"'


def column_sql(column: str) -> str:
    """The column as compared: a landing path relative to its lake's landing folder."""
    if column in ("file", "source_file"):
        return f"regexp_replace({column}, '^.*/landing/', '') as {column}"
    return quoted(column)


def table_files(lake: Path, table, partitions: set[str] | None = None  # type: ignore[no-untyped-def]
                ) -> list[str]:
    files = sorted(str(p) for p in (lake / table.schema / table.name).glob("*/data.parquet")
                   if partitions is None or p.parent.name in partitions)
    assert files, f"{table.qualified_name} has no files in {lake}"
    return files


def table_rows(lake: Path, table) -> tuple[list[str], list[tuple]]:  # type: ignore[no-untyped-def]
    """The table's column names and rows."""
    relation = duckdb.read_parquet(table_files(lake, table), union_by_name=True)
    return relation.columns, relation.fetchall()


def differences(duck: Path, spark: Path, table,  # type: ignore[no-untyped-def]
                partitions: set[str] | None = None) -> list[str]:
    """How the table differs between the two lakes: its columns (name and type), its row count,
    then its rows, paired by every column but the floats (and, within equal ones, by the floats
    rounded: the last digits of a sum depend on its order), integers and text exactly, floats
    to 1e-9 relative. In SQL: a day of a million rows compares in seconds."""
    # No progress bar: `make bench` prints these comparisons' verdicts, not their progress.
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        return _differences(con, duck, spark, table, partitions)


def _differences(con: duckdb.DuckDBPyConnection, duck: Path, spark: Path, table,  # type: ignore[no-untyped-def]
                 partitions: set[str] | None) -> list[str]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for side, lake in (("duck", duck), ("spark", spark)):
        listed = ", ".join(f"'{f}'" for f in table_files(lake, table, partitions))
        con.execute(f"create view {side}_read as "
                    f"select * from read_parquet([{listed}], union_by_name = true)")
        columns[side] = sorted(con.execute(f"select column_name, column_type from "
                                           f"(describe {side}_read)").fetchall())
    if columns["duck"] != columns["spark"]:
        return [f"{table.qualified_name}: columns {columns['duck']} on DuckDB, "
                f"{columns['spark']} on Spark"]
    floats = [quoted(c) for c, kind in columns["duck"] if kind in ("DOUBLE", "FLOAT")]
    exact = [quoted(c) for c, kind in columns["duck"] if kind not in ("DOUBLE", "FLOAT")]
    pairing = ", ".join(f"round({f}, 6)" for f in floats) or "1"
    for side in ("duck", "spark"):
        projected = ", ".join(column_sql(c) for c, _ in columns[side])
        con.execute(f"create view {side} as select *, row_number() over "
                    f"(partition by {', '.join(exact) or '1'} order by {pairing}) as pair "
                    f"from (select {projected} from {side}_read)")
    counts = con.execute("select (select count(*) from duck), (select count(*) from spark)"
                         ).fetchone()
    if counts[0] != counts[1]:
        return [f"{table.qualified_name}: {counts[0]} rows on DuckDB, {counts[1]} on Spark"]
    paired = " and ".join(f"d.{c} is not distinct from s.{c}" for c in [*exact, "pair"])
    unequal = " or ".join(
        f"not (d.{f} is not distinct from s.{f} or abs(d.{f} - s.{f}) <= "
        f"greatest(1e-9 * greatest(abs(d.{f}), abs(s.{f})), 1e-12))" for f in floats)
    unpaired = "d.pair is null or s.pair is null"
    wrong = con.execute(
        f"select count(*), any_value(to_json(d)), any_value(to_json(s)) "
        f"from duck d full join spark s on {paired} "
        f"where {unpaired}{' or ' + unequal if floats else ''}").fetchone()
    if wrong[0]:
        return [f"{table.qualified_name}: {wrong[0]} rows differ, e.g. DuckDB {wrong[1]}, "
                f"Spark {wrong[2]}"]
    return []


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
    assert {row[columns.index("outcome")] for row in outcomes} >= {"kept", "duplicate"}
    assert table_rows(duck, REJECTED_EVENTS)[1]
    quiet = f"{DAY:%Y-%m-%d}T{QUIET_HOUR:02d}"
    assert all((lake / table.schema / table.name / quiet / "data.parquet").exists()
               for lake in (duck, spark) for table in HOURLY_STAGES)
    columns, validated = table_rows(duck, VALIDATED)
    assert "nobody.knows" in {row[columns.index("scenario_id")] for row in validated}
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
