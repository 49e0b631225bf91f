"""Synthetic landing files: realistic request telemetry carrying every edge case of the contract."""

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from telemetry_core.durable import ensure_dir
from telemetry_core.landing import hour_folder
from telemetry_synth.drawing import HOUR, HourRows, draw_hour
from telemetry_synth.model import Incident, Model, diurnal_factor
from telemetry_synth.rendering import write_file
from telemetry_synth.vocabulary import KIND_BLANK, KIND_EVENT


@dataclass(frozen=True)
class GenerationSummary:
    """What one `generate_landing` call wrote."""

    events_written: int
    duplicate_events: int
    malformed_lines: int
    blank_lines: int
    files_written: int
    incidents: list[Incident]
    events_by_hour: dict[datetime, int]
    files: list[Path]


def generate_landing(
    landing_dir: Path,
    reference_dir: Path,
    start: datetime,
    end: datetime,
    events_per_hour: int,
    seed: int,
    files_per_hour: int = 4,
    gzip_share: float = 0.5,
    malformed_rate: float = 0.001,
) -> GenerationSummary:
    """Write synthetic landing files for every hour of [start, end) and summarise them."""
    start, end = _check_window(start, end)
    _check_arguments(events_per_hour, seed, files_per_hour, gzip_share, malformed_rate)
    model = Model.build(Path(reference_dir), seed)
    landing_dir = Path(landing_dir)

    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR

    events_by_hour: dict[datetime, int] = {}
    files: list[Path] = []
    duplicates = malformed = blanks = 0
    # Rendering and compression release the GIL, so the next hour is drawn while the
    # previous hour's files are written; waiting one hour behind bounds memory.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        pending: list[Future[Path]] = []
        for hour in hours:
            count = round(events_per_hour * diurnal_factor(hour.hour))
            rows = draw_hour(model, seed, hour, count, files_per_hour, gzip_share, malformed_rate)
            for future in pending:
                files.append(future.result())
            pending = _submit_hour(pool, model, landing_dir, seed, hour, rows)
            kinds = rows.columns["kind"]
            events_by_hour[hour] = int(np.count_nonzero(kinds == KIND_EVENT))
            duplicates += rows.duplicates
            blanks += int(np.count_nonzero(kinds == KIND_BLANK))
            malformed += int(np.count_nonzero((kinds != KIND_EVENT) & (kinds != KIND_BLANK)))
        for future in pending:
            files.append(future.result())

    return GenerationSummary(
        events_written=sum(events_by_hour.values()),
        duplicate_events=duplicates,
        malformed_lines=malformed,
        blank_lines=blanks,
        files_written=len(files),
        incidents=model.incidents_between(start, end),
        events_by_hour=events_by_hour,
        files=files,
    )


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
        if value.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != value:
            raise ValueError(f"{name} must be aligned to a whole UTC hour, got {value.isoformat()}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    return start, end


def _check_arguments(
    events_per_hour: int, seed: int, files_per_hour: int, gzip_share: float, malformed_rate: float
) -> None:
    if not isinstance(events_per_hour, int | np.integer) or events_per_hour < 0:
        raise ValueError(f"events_per_hour must be an integer >= 0, got {events_per_hour!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(files_per_hour, int | np.integer) or files_per_hour < 1:
        raise ValueError(f"files_per_hour must be an integer >= 1, got {files_per_hour!r}")
    if not 0.0 <= gzip_share <= 1.0:
        raise ValueError(f"gzip_share must be within [0, 1], got {gzip_share!r}")
    if not 0.0 <= malformed_rate <= 0.5:
        raise ValueError(f"malformed_rate must be within [0, 0.5], got {malformed_rate!r}")


def _submit_hour(
    pool: ThreadPoolExecutor,
    model: Model,
    landing_dir: Path,
    seed: int,
    hour: datetime,
    rows: HourRows,
) -> list[Future[Path]]:
    """Queue one file per slot of the hour and clear this seed's stale files from the folder."""
    folder = hour_folder(landing_dir, hour)
    ensure_dir(folder)
    targets = []
    futures = []
    for index, gzipped in enumerate(rows.gzipped):
        path = folder / f"gen-s{seed}-{index:02d}.jsonl{'.gz' if gzipped else ''}"
        targets.append(path.name)
        lo, hi = rows.file_bounds[index], rows.file_bounds[index + 1]
        part = {name: values[lo:hi] for name, values in rows.columns.items()}
        futures.append(pool.submit(write_file, model, hour, part, path, bool(gzipped)))
    # A rerun with another gzip_share or fewer files per hour must not leave the old copy of
    # this seed's traffic behind, or the hour would be counted twice.
    for stale in folder.glob(f"gen-s{seed}-*.jsonl*"):
        if stale.name not in targets and stale.name.endswith((".jsonl", ".jsonl.gz")):
            stale.unlink()
    return futures
