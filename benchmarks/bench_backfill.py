"""Wall time and peak memory of a 30-day backfill at 100k events per hour (72M events), split into
Dagster overhead, checks and SQL work per stage.

The backfill is what `telemetry backfill` runs: reference data, every hourly stage over the 720
hours, every daily stage over the 30 days, in as few runs as it plans. The split comes from two
sources that do not depend on each other:

- SQL work: each stage reports, per partition, the seconds from reading its inputs to the renamed
  Parquet file (the `telemetry_assets.progress` logger);
- steps: the Dagster event log's start and end of every step (asset or asset check).

So `run wall - Σ step time` is Dagster's per-run cost (planning, events, resources), and asset
checks are reported on their own line. A stage computes partitions of the range at the same time
(TELEMETRY_PARTITIONS_AT_ONCE), so per-stage SQL work is partition-seconds, not wall time.
BENCH_BACKFILL_DAYS and BENCH_BACKFILL_EVENTS_PER_HOUR scale it down.
The landing files are generated once and kept (benchmarks/cache.py); so is the lake the backfill
builds, for bench_dashboard.
"""

import logging
import os
import resource
import shutil
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import cache

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = int(os.environ.get("BENCH_BACKFILL_DAYS", "30"))
SEED = 17
EVENTS_PER_HOUR = int(os.environ.get("BENCH_BACKFILL_EVENTS_PER_HOUR", "100000"))


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    try:
        run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds from start to end of every step of a run, from the event log."""
    from dagster import DagsterEventType

    started, seconds = {}, {}
    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
             DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(run_id, of_type=kinds):
        if entry.dagster_event.event_type == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        else:
            seconds[entry.step_key] = entry.timestamp - started[entry.step_key]
    return seconds


def run(workdir: Path) -> None:
    os.environ["TELEMETRY_DATA_DIR"] = str(workdir / "data")
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    (workdir / "dagster_home").mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")
    shutil.copytree(REPO / "data" / "reference", workdir / "data" / "reference")

    from dagster import DagsterInstance

    from telemetry_cli.launcher import backfill, plan_backfill

    source = cache.landing_apart(START, DAYS, EVENTS_PER_HOUR, SEED)
    os.environ["TELEMETRY_LANDING_DIR"] = str(source.landing_dir)
    print(f"{source.events:,} events over {DAYS * 24} hours in {source.files} files "
          f"({'generated now' if source.generated_now else 'kept from an earlier run'}, "
          "not timed below)", flush=True)
    end = START + timedelta(days=DAYS)

    sql_seconds: dict[str, float] = defaultdict(float)
    partitions: dict[str, int] = defaultdict(int)

    def on_progress(progress) -> None:
        sql_seconds[progress.stage] += progress.seconds
        partitions[progress.stage] += 1

    run_seconds: dict[str, float] = {}
    run_ids: dict[str, str] = {}
    last = time.perf_counter()

    def on_run(job_name: str, run_id: str) -> None:
        nonlocal last
        now = time.perf_counter()
        run_seconds[job_name], run_ids[job_name], last = now - last, run_id, now

    # The progress logger is INFO; the CLI shows nothing else, nor does this.
    logging.getLogger("dagster").setLevel(logging.WARNING)
    plan = plan_backfill(START, end)
    with DagsterInstance.get() as instance:
        started = last = time.perf_counter()
        backfill(plan, instance, on_progress, on_run)
        wall = time.perf_counter() - started
        steps = {job: step_seconds(instance, run_id) for job, run_id in run_ids.items()}
    cache.keep_lake(source, workdir / "data")

    sql_total = sum(sql_seconds.values())
    step_total = sum(sum(by_step.values()) for by_step in steps.values())
    check_total = sum(seconds for by_step in steps.values()
                      for key, seconds in by_step.items() if _is_check(key))
    asset_steps = step_total - check_total
    print(f"backfill of {DAYS} days ({len(plan.hourly_keys)} hours, {len(plan.daily_keys)} days, "
          f"{source.events:,} events) in {len(run_ids)} runs: {wall:.1f}s wall, "
          f"{source.events / wall:,.0f} events/s (goal: 30 days in under 300 s)")
    print(f"  peak RSS {peak_rss_mib():,.0f} MiB (the runs execute in this process)")
    for job, seconds in run_seconds.items():
        print(f"  {job:<16} run {seconds:7.1f}s   steps {sum(steps[job].values()):7.1f}s")
    print("  per stage: SQL work (inputs to renamed Parquet file) / partitions")
    for stage, seconds in sql_seconds.items():
        print(f"    {stage:<24} {seconds:7.1f}s  {partitions[stage]:4d} partitions, "
              f"{1000 * seconds / partitions[stage]:6.0f} ms each")
    print("  split of the wall time:")
    rows = [
        ("asset steps", asset_steps),
        ("asset checks (steps)", check_total),
        ("Dagster between steps (runs)", sum(run_seconds.values()) - step_total),
        ("outside runs (CLI plumbing)", wall - sum(run_seconds.values())),
    ]
    for label, seconds in rows:
        print(f"    {label:<30} {seconds:8.1f}s  {100 * seconds / wall:5.1f}%")
    print(f"  SQL work summed over partitions: {sql_total:.1f}s; with two partitions at once "
          f"it can exceed the asset steps' wall time ({asset_steps:.1f}s)")


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _is_check(step_key: str) -> bool:
    from telemetry_assets.definitions import defs

    # A step is an asset check when its op materializes no asset.
    checks_only = {assets_def.node_def.name for assets_def in defs.resolve_asset_graph().assets_defs
                   if assets_def.is_executable and not assets_def.keys}
    return step_key in checks_only


if __name__ == "__main__":
    main()
