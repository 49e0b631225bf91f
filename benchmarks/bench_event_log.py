"""The Dagster event log's cost per partition: a range run of 240 hours over a chain of 4
assets that do nothing (≈1,900 events: a planned event and a materialization per hour and
asset), on Dagster's own SQLite event log and on the instance settings of deploy/dagster.yaml."""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from dagster import (
    BackfillPolicy,
    DagsterInstance,
    HourlyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)

REPO = Path(__file__).resolve().parent.parent
HOURS = HourlyPartitionsDefinition(start_date="2026-11-01-00:00")
RANGE = {"dagster/asset_partition_range_start": "2026-11-01-00:00",
         "dagster/asset_partition_range_end": "2026-11-10-23:00"}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def chain(length: int) -> list:
    assets = []
    for position in range(length):
        @asset(name=f"step_{position}", partitions_def=HOURS, deps=assets[-1:],
               backfill_policy=BackfillPolicy.single_run())
        def step(context) -> MaterializeResult:
            return MaterializeResult(metadata={"partitions": len(context.partition_keys)})
        assets.append(step)
    return assets


def timed_run(assets: list, product_settings: bool) -> tuple[float, int]:
    home = Path(tempfile.mkdtemp(prefix="bench-event-log-"))
    try:
        os.environ["DAGSTER_HOME"] = str(home)
        if product_settings:
            shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        else:
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with DagsterInstance.get() as instance:
            started = time.perf_counter()
            result = materialize(assets, instance=instance, tags=RANGE, run_config=QUIET)
            elapsed = time.perf_counter() - started
            return elapsed, len(instance.all_logs(result.run_id))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    logging.getLogger("dagster").setLevel(logging.ERROR)
    assets = chain(4)
    figures = {True: [], False: []}
    for _trial in range(2):
        for product_settings in (False, True):
            figures[product_settings].append(timed_run(assets, product_settings))
    for product_settings, label in ((False, "Dagster's SqliteEventLogStorage"),
                                    (True, "deploy/dagster.yaml (SqliteEventLogKeepingEngines)")):
        best, events = min(figures[product_settings])
        print(f"{label}: {best:.2f} s for {events} events, {1000 * best / events:.2f} ms an event"
              f" (best of {len(figures[product_settings])})")
    ratio = min(figures[False])[0] / min(figures[True])[0]
    print(f"event log speed-up: {ratio:.2f}x")


if __name__ == "__main__":
    main()
