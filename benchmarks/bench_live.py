"""What the live path costs: one refresh of the open hour at 100,000 events an hour, as the
service_mood sensor runs it every 30 seconds, and the mood judgement that follows it.

The day before is run exactly first (the refresh dedupes against its raw events, the mood's
windows read its minute aggregates). The open hour then arrives as a receiver lands it: one
file per second of event time (a client flushes once a second), and a refresh after every
30 seconds of them, from the first minute of the hour to the last, so the late refreshes pay
for a nearly full hour. Goal: under 2 s of CPU per minute of wall time (two refreshes a minute).
"""

import json
import os
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVENTS_PER_HOUR = int(os.environ.get("BENCH_LIVE_EVENTS_PER_HOUR", "100000"))
HOUR = datetime(2026, 11, 21, 10, tzinfo=UTC)
HISTORY_HOURS = 24
TICK_SECONDS = 30


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seconds_of_the_hour(staging: Path) -> dict[int, list[bytes]]:
    """The generated hour's lines by the second of the hour of their event time (setup, not
    timed); a line without a readable time goes with the line before it."""
    lines_by_second: dict[int, list[bytes]] = {}
    second = 0
    for path in sorted(staging.rglob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                moment = json.loads(line)["time"]
                second = int(moment[14:16]) * 60 + int(moment[17:19])
            except (ValueError, KeyError, TypeError, IndexError):
                pass
            lines_by_second.setdefault(second, []).append(line)
    return lines_by_second


def main() -> None:
    from telemetry_assets import live
    from telemetry_assets.mood.burn_rates import changing_instants, current_mood
    from telemetry_assets.mood.burn_rates import latest_data_time as latest_of
    from telemetry_assets.resources import MoodSettings, TelemetryStore
    from telemetry_cli.launcher import run_job_range, run_reference
    from telemetry_core.landing import hour_folder
    from telemetry_synth.generate import generate_landing

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        root = Path(tmp)
        os.environ["TELEMETRY_DATA_DIR"] = str(root / "data")
        os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
        (root / "dagster_home").mkdir()
        (root / "dagster_home" / "dagster.yaml").write_bytes(
            (REPO / "deploy" / "dagster.yaml").read_bytes())
        store = TelemetryStore()
        settings = store.settings
        settings.reference_dir.mkdir(parents=True)
        for name in ("scenarios.csv", "customers.csv", "operation_scenarios.csv"):
            (settings.reference_dir / name).write_bytes(
                (REPO / "data" / "reference" / name).read_bytes())
        history_start = HOUR - timedelta(hours=HISTORY_HOURS)
        generate_landing(settings.landing_dir, settings.reference_dir, history_start, HOUR,
                         EVENTS_PER_HOUR, seed=11)
        staging = root / "staging"
        generate_landing(staging, settings.reference_dir, HOUR, HOUR + timedelta(hours=1),
                         EVENTS_PER_HOUR, seed=12, files_per_hour=1, gzip_share=0.0)
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            run_reference(instance)
            started = time.perf_counter()
            run_job_range(instance, "hourly_pipeline",
                          [f"{history_start + timedelta(hours=h):%Y-%m-%d-%H}:00"
                           for h in range(HISTORY_HOURS)])
            print(f"the day before, run exactly: {time.perf_counter() - started:.1f} s",
                  flush=True)
        by_second = seconds_of_the_hour(staging)
        folder = hour_folder(settings.landing_dir, HOUR)
        folder.mkdir(parents=True, exist_ok=True)
        lake, horizon, policy = store.lake, store.dedupe_horizon, MoodSettings().policy
        refresh_cpu, judge_cpu, parsed = [], [], []
        judged_until = None
        for tick_end in range(TICK_SECONDS, 3600 + 1, TICK_SECONDS):
            for second in range(tick_end - TICK_SECONDS, tick_end):
                lines = by_second.get(second)
                if lines:
                    (folder / f"receiver-{second:04d}.jsonl").write_bytes(
                        b"\n".join(lines) + b"\n")
            now = HOUR + timedelta(seconds=tick_end)
            before = cpu_seconds()
            refreshes = live.refresh(lake, settings, horizon, now)
            refresh_cpu.append(cpu_seconds() - before)
            parsed.append(sum(r.files_parsed for r in refreshes))

            def judge(con, after=judged_until):
                latest = latest_of(con)
                start = after or latest - timedelta(minutes=1)
                return latest, [current_mood(con, policy, at)
                                for at in changing_instants(con, policy, start, latest)]

            before = cpu_seconds()
            judged_until, _ = live.read_current(lake, judge).value
            judge_cpu.append(cpu_seconds() - before)
        per_minute = 60 / TICK_SECONDS
        before = cpu_seconds()
        live.bring_days_up_to_date(lake, [HOUR.date()])
        shown_day = cpu_seconds() - before
        print(f"open hour at {EVENTS_PER_HOUR:,} events/h: {len(refresh_cpu)} refreshes, "
              f"{sum(parsed)} files parsed once each ({len(list(folder.iterdir()))} landed)")
        print(f"refresh CPU: median {statistics.median(refresh_cpu):.3f} s, last (hour nearly "
              f"full) {refresh_cpu[-1]:.3f} s, max {max(refresh_cpu):.3f} s (the first, or one "
              f"that also remade today's tables, every 5 minutes)")
        average = statistics.mean(refresh_cpu) * per_minute
        print(f"refresh CPU per minute of wall time: {average:.2f} s on average over the hour, "
              "today's tables included (goal < 2 s); "
              f"{statistics.median(refresh_cpu) * per_minute:.2f} s at the median")
        print(f"today's tables remade for a reader at the end of the hour: {shown_day:.3f} s CPU")
        print(f"mood judgement after each refresh ({HISTORY_HOURS} h of history): median "
              f"{statistics.median(judge_cpu):.3f} s CPU, max {max(judge_cpu):.3f} s")
        print(f"refresh + judgement per minute of wall time: "
              f"{(statistics.mean(refresh_cpu) + statistics.mean(judge_cpu)) * per_minute:.2f}"
              " s CPU on average")


if __name__ == "__main__":
    main()
