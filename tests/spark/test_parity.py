"""Parity: the same generated day through the pipeline on DuckDB and on a real Spark standalone
cluster (TELEMETRY_ENGINE=spark), from the same landing files; every SQL stage's output equal
(integers exactly, floats within 1e-9 relative).

The day is the generator's, with its malformed lines, duplicates and unknown scenarios, plus
late events across an hour boundary and an outage.
"""

import math
import shutil
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
from telemetry_synth import generate_landing
from tests.events import wire_event
from tests.helpers import write_landing, write_reference
from tests.platform import make_platform

pytestmark = pytest.mark.spark

DAY = datetime(2026, 11, 20, tzinfo=UTC)
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
    root.mkdir()
    with make_platform(root) as platform, pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        shutil.copytree(landing, platform.settings.landing_dir, dirs_exist_ok=True)
        platform.run_whole_day(f"{DAY:%Y-%m-%d}")
        return platform.settings.lake_dir


def column_sql(column: str) -> str:
    if column in ("file", "source_file"):
        return f"regexp_replace({column}, '^.*/landing/', '') as {column}"
    return f'"{column}"'


def table_rows(lake: Path, table) -> tuple[list[str], list[tuple]]:  # type: ignore[no-untyped-def]
    files = sorted(str(p) for p in (lake / table.schema / table.name).glob("*/data.parquet"))
    assert files, f"{table.qualified_name} has no files in {lake}"
    relation = duckdb.read_parquet(files, union_by_name=True)
    columns = sorted(relation.columns)
    # A landing file is named by its path, which differs between the two roots below `landing`.
    ordered = relation.select(", ".join(column_sql(c) for c in columns))
    return columns, sorted(ordered.fetchall(), key=lambda row: tuple(
        (v is None, str(v)) for v in row))


def same_value(left, right) -> bool:  # type: ignore[no-untyped-def]
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            return left is right
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)
    return left == right


def differences(duck: Path, spark: Path, table) -> list[str]:  # type: ignore[no-untyped-def]
    columns, expected = table_rows(duck, table)
    spark_columns, found = table_rows(spark, table)
    if columns != spark_columns:
        return [f"{table.qualified_name}: columns {columns} on DuckDB, {spark_columns} on Spark"]
    if len(expected) != len(found):
        return [f"{table.qualified_name}: {len(expected)} rows on DuckDB, {len(found)} on Spark"]
    wrong = [(e, f) for e, f in zip(expected, found, strict=True)
             if not all(same_value(a, b) for a, b in zip(e, f, strict=True))]
    return [f"{table.qualified_name}: {len(wrong)} rows differ, e.g. {wrong[0]}"] if wrong else []


def test_a_generated_day_publishes_the_same_on_duckdb_and_on_a_spark_cluster(
        tmp_path, spark_cluster):
    landing = tmp_path / "landing"
    reference = tmp_path / "reference-for-generation"
    write_reference(reference)
    generate_landing(landing, reference, DAY, DAY + timedelta(days=1), events_per_hour=300,
                     seed=5, files_per_hour=1, malformed_rate=0.01)
    for hour in (9, 10):
        start = DAY + timedelta(hours=hour)
        write_landing(landing, start, "edge", [e for e in edge_cases() if e["time"].startswith(
            f"{start:%Y-%m-%dT%H}")])

    duck = publish_day(tmp_path / "duckdb", landing)
    spark = publish_day(tmp_path / "spark", landing, TELEMETRY_ENGINE="spark",
                        TELEMETRY_SPARK_MASTER=spark_cluster.master_url,
                        TELEMETRY_PARTITIONS_AT_ONCE="6")

    problems = [line for table in SPARK_STAGES
                for line in differences(duck, spark, table)]
    assert problems == []
    # Not a degenerate day: traffic, rejected lines, duplicates and unknown scenarios are there.
    columns, outcomes = table_rows(duck, EVENT_OUTCOMES)
    assert {row[columns.index("outcome")] for row in outcomes} >= {"kept", "duplicate"}
    assert table_rows(duck, REJECTED_EVENTS)[1]
    columns, validated = table_rows(duck, VALIDATED)
    assert "nobody.knows" in {row[columns.index("scenario_id")] for row in validated}
    # The work ran on both workers' executors, not in the driver alone.
    assert all(count >= 1 for count in spark_cluster.executors_per_worker()), \
        spark_cluster.executors_per_worker()
