"""Dashboard response times over 30 days of published data, as `telemetry dashboard` serves them.

The lake is the one bench_backfill built (30 days at 100k events per hour) when it is kept for
the current code; otherwise a smaller one (BENCH_DASHBOARD_EVENTS_PER_HOUR, default 10k) is built
here once and kept. BENCH_DASHBOARD_DATA_DIR names another data directory to read instead (one
kept for earlier code, say: the dashboard only reads it). Each of several days is asked for once
(a first look: nothing is kept yet for that day), then 50 requests go round the same days (later
looks, the figures and pages kept). The page asked for is the day's whole HTML page, with
figures, charts and tables.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks import bench_backfill, cache
from benchmarks.bench_receiver import _free_port, _wait_until_listening

REQUESTS = 50
DAYS_ASKED = 5
TELEMETRY = str(Path(sys.executable).parent / "telemetry")
EVENTS_PER_HOUR = int(os.environ.get("BENCH_DASHBOARD_EVENTS_PER_HOUR", "10000"))


def lake_with_30_days() -> tuple[Path, str]:
    """A data directory holding 30 days of published data, and how it was made."""
    if os.environ.get("BENCH_DASHBOARD_DATA_DIR"):
        return Path(os.environ["BENCH_DASHBOARD_DATA_DIR"]), "BENCH_DASHBOARD_DATA_DIR"
    backfilled = cache.lake_entry(cache.landing_entry(
        bench_backfill.START, 30, bench_backfill.EVENTS_PER_HOUR, bench_backfill.SEED))
    if backfilled.exists():
        return backfilled, f"bench_backfill's lake, {bench_backfill.EVENTS_PER_HOUR:,} events/h"
    source = cache.landing_apart(bench_backfill.START, 30, EVENTS_PER_HOUR, bench_backfill.SEED)
    entry = cache.lake_entry(source.landing_dir.parent)
    if not entry.exists():
        print(f"building a 30-day lake at {EVENTS_PER_HOUR:,} events/h (once, kept)", flush=True)
        work = entry.with_name(entry.name + ".building")
        shutil.rmtree(work, ignore_errors=True)
        (work / "dagster_home").mkdir(parents=True)
        shutil.copy(cache.REPO / "deploy" / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
        environment = {**os.environ, "TELEMETRY_DATA_DIR": str(work / "data"),
                       "TELEMETRY_LANDING_DIR": str(source.landing_dir),
                       "TELEMETRY_REFERENCE_DIR": str(cache.REPO / "data" / "reference"),
                       "DAGSTER_HOME": str(work / "dagster_home")}
        end = bench_backfill.START + timedelta(days=30)
        subprocess.run([TELEMETRY, "backfill",
                        "--start", f"{bench_backfill.START:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}"],
                       env=environment, check=True, stdout=subprocess.DEVNULL)
        cache.keep_lake(source, work / "data")
        shutil.rmtree(work)
    return entry, f"built here, {EVENTS_PER_HOUR:,} events/h"


def main() -> None:
    data_dir, made = lake_with_30_days()
    environment = {**os.environ, "TELEMETRY_DATA_DIR": str(data_dir),
                   "TELEMETRY_REFERENCE_DIR": str(cache.REPO / "data" / "reference")}
    # The kept warehouse's views name the directory the lake was built in: point them here.
    subprocess.run([sys.executable, "-c",
                    "from telemetry_assets.resources import TelemetryStore\n"
                    "from telemetry_assets.tables import TABLES\n"
                    "TelemetryStore().lake.publish_views(TABLES)"],
                   env=environment, check=True)
    port = _free_port()
    server = subprocess.Popen(
        [TELEMETRY, "dashboard", "--port", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_listening(port, server)
        last_day = bench_backfill.START + timedelta(days=29)
        days = [last_day - timedelta(days=back) for back in range(DAYS_ASKED)]
        first, second = [], []
        for day in days:
            first.append(_get(port, day))
        for n in range(REQUESTS):
            second.append(_get(port, days[n % len(days)]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"dashboard over 30 days of published data ({made}), {DAYS_ASKED} days asked for")
    print(f"  first look at a day: median {statistics.median(first):.0f} ms, "
          f"max {max(first):.0f} ms ({len(first)} requests)")
    print(f"  later looks: median {statistics.median(second):.0f} ms, "
          f"p95 {_p95(second):.0f} ms over {len(second)} requests (goal: p95 under 300 ms)")


def _get(port: int, day: datetime) -> float:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?day={day:%Y-%m-%d}",
                                    timeout=120) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"the page for {day:%Y-%m-%d} answered {error.code}: "
                           f"{error.read().decode()[-500:]}") from error
    elapsed = 1000 * (time.perf_counter() - started)
    if b"minute_chart" not in body:
        raise RuntimeError(f"the page for {day:%Y-%m-%d} has no minute chart")
    return elapsed


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


if __name__ == "__main__":
    main()
