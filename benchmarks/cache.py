"""Inputs and lakes kept between benchmark runs, so that a figure is not waiting on generation.

Generated landing files are keyed by what they are made from (the window, the rate, the seed,
the generator's code and the reference data); a lake built by a backfill by its landing files
and the pipeline's code. A key that changes is a new entry; nothing is ever reused stale.
`BENCH_CACHE_DIR` moves the cache (default: ~/.cache/telemetry-bench).
"""

import hashlib
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPELINE_CODE = ("telemetry_assets", "telemetry_core", "telemetry_cli", "dbt_like_sql")
# Code that only reads the lake: changing it leaves a kept lake as it was.
READERS = ("telemetry_assets/dashboard",)


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "telemetry-bench"))


def _digest(*parts: object, trees: tuple[str, ...] = ()) -> str:
    hasher = hashlib.sha256(json.dumps([str(part) for part in parts]).encode())
    for tree in trees:
        for path in sorted((REPO / tree).rglob("*")):
            relative = path.relative_to(REPO).as_posix()
            if (path.is_file() and "__pycache__" not in path.parts
                    and not relative.startswith(READERS)):
                hasher.update(relative.encode())
                hasher.update(path.read_bytes())
    return hasher.hexdigest()[:16]


@dataclass(frozen=True)
class Landing:
    """Generated landing files, and how many events and files they hold."""

    landing_dir: Path
    events: int
    files: int
    generated_now: bool


def landing_entry(start: datetime, days: int, events_per_hour: int, seed: int) -> Path:
    """Where the landing files of that key are kept (whether or not they are yet)."""
    key = _digest(start, days, events_per_hour, seed,
                  trees=("telemetry_synth", "data/reference"))
    return cache_root() / f"landing-{start:%Y%m%d}-{days}d-{events_per_hour}-{key}"


def landing(start: datetime, days: int, events_per_hour: int, seed: int) -> Landing:
    """Landing files for [start, start + days), generated once per key."""
    from telemetry_synth import generate_landing

    entry = landing_entry(start, days, events_per_hour, seed)
    summary_path = entry / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        return Landing(entry / "landing", summary["events"], summary["files"], False)
    # A generation cut short leaves no summary: start that entry over.
    shutil.rmtree(entry, ignore_errors=True)
    summary = generate_landing(entry / "landing", REPO / "data" / "reference", start,
                               start + timedelta(days=days), events_per_hour=events_per_hour,
                               seed=seed)
    summary_path.write_text(json.dumps(
        {"events": summary.events_written, "files": summary.files_written}))
    return Landing(entry / "landing", summary.events_written, summary.files_written, True)


def landing_apart(start: datetime, days: int, events_per_hour: int, seed: int) -> Landing:
    """`landing(...)`, generated (when not cached) in a child process, so that this process's
    peak memory is the benchmark's own."""
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=landing, args=(start, days, events_per_hour, seed))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"generating the landing files failed (exit {child.exitcode})")
    return landing(start, days, events_per_hour, seed)


def lake_entry(landing_entry: Path) -> Path:
    """Where the lake built from those landing files by the current pipeline code is kept."""
    return cache_root() / f"lake-{landing_entry.name}-{_digest(trees=PIPELINE_CODE)}"


def keep_lake(source: Landing, data_dir: Path) -> None:
    """Keep a data directory a backfill of `source` produced (without its landing files)."""
    entry = lake_entry(source.landing_dir.parent)
    if entry.exists():
        return
    partial = entry.with_name(entry.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(data_dir, partial, ignore=shutil.ignore_patterns("landing"))
    partial.rename(entry)
