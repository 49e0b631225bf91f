"""The same one-day backfill on each engine: DuckDB (the default), Spark in the driver
(`local[2]`) and a Spark standalone cluster of two one-core workers on this machine; events/s.

Each backfill is what `telemetry backfill` runs (reference data, the 24 hours, the day) over
the same landing files (generated once and kept, benchmarks/cache.py), into a fresh lake. Every
table of the three is compared as the parity test does, so a figure is never for a different
result.
BENCH_ENGINES_EVENTS_PER_HOUR scales the day (default 100k events/hour, as bench_backfill).
"""

import logging
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import cache

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 10, 1, tzinfo=UTC)
SEED = 17
EVENTS_PER_HOUR = int(os.environ.get("BENCH_ENGINES_EVENTS_PER_HOUR", "100000"))


def main() -> None:
    from telemetry_core.spark import stop_all
    from tests.spark.cluster import SparkCluster
    from tests.spark.test_parity import SPARK_STAGES, differences

    source = cache.landing_apart(START, 1, EVENTS_PER_HOUR, SEED)
    print(f"{source.events:,} events over 24 hours in {source.files} files "
          f"({'generated now' if source.generated_now else 'kept from an earlier run'}, "
          "not timed below)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    results = []
    try:
        results.append(("duckdb", backfill_day(workdir / "duckdb", source, {})))
        results.append(("spark local[2]", backfill_day(
            workdir / "local", source, {"TELEMETRY_ENGINE": "spark",
                                        "TELEMETRY_SPARK_MASTER": "local[2]"})))
        cluster = SparkCluster(workdir / "cluster-processes").start()
        try:
            results.append(("spark 2 workers", backfill_day(
                workdir / "cluster", source, {"TELEMETRY_ENGINE": "spark",
                                              "TELEMETRY_SPARK_MASTER": cluster.master_url})))
        finally:
            stop_all()
            cluster.stop()
        reference = results[0][1][1]
        for name, (seconds, lake) in results:
            # The parity test's comparison: types, exact integers and text, floats to 1e-9.
            problems = [line for table in SPARK_STAGES
                        for line in differences(reference, lake, table)]
            same = "every table the same" if not problems else f"DIFFERENT: {problems[0]}"
            print(f"  {name:<16} {seconds:7.1f}s  {source.events / seconds:>10,.0f} events/s"
                  f"  {seconds / results[0][1][0]:5.1f}x DuckDB  ({same})", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def backfill_day(root: Path, source: cache.Landing, engine: dict[str, str]) -> tuple[float, Path]:
    """`telemetry backfill` of the day under `root` with `engine`'s variables; its wall time
    (the Spark session's start included: a backfill pays it) and its lake."""
    from dagster import DagsterInstance

    from telemetry_cli.launcher import backfill, plan_backfill

    (root / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    shutil.copytree(REPO / "data" / "reference", root / "data" / "reference")
    variables = {"TELEMETRY_DATA_DIR": str(root / "data"),
                 "DAGSTER_HOME": str(root / "dagster_home"),
                 "TELEMETRY_LANDING_DIR": str(source.landing_dir), **engine}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    logging.getLogger("dagster").setLevel(logging.WARNING)
    try:
        with DagsterInstance.get() as instance:
            started = time.perf_counter()
            backfill(plan_backfill(START, START + timedelta(days=1)), instance,
                     lambda _progress: None, lambda _job, _run: None)
            return time.perf_counter() - started, root / "data" / "lake"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    main()
