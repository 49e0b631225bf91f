"""Landing files as numbered lines, for the raw stage's SQL to parse.

DuckDB's JSON reader cannot say on which line a malformed record sits, skips nothing it cannot
parse without dropping it silently, and gives up on a whole gzip file whose last member is
truncated. So the bytes are split into numbered lines here (bulk byte operations, no per-line
Python logic) and DuckDB parses every line in the raw stage's SQL.
"""

import contextlib
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from telemetry_core.settings import FIRST_PARTITION
from telemetry_core.sql import compute_connection, load_sql, utc_naive

if TYPE_CHECKING:
    from dagster import TimeWindow

# A line keeps its newline, if it has one (the raw stage strips it).
LINE_SCHEMA = pa.schema(
    [("file", pa.string()), ("line_number", pa.int64()), ("line", pa.binary())]
)
# When each file landed, and the window (its landing hour) its events' times must fall in.
ARRIVAL_SCHEMA = pa.schema([("file", pa.string()), ("arrived_at", pa.timestamp("us")),
                            ("window_start", pa.timestamp("us")),
                            ("window_end", pa.timestamp("us"))])
LANDING_SUFFIXES = (".jsonl", ".jsonl.gz")
# classify_event_lines judges events on their own, wherever their time falls.
_ANY_TIME = {"window_start": datetime(1, 1, 1), "window_end": datetime(9999, 12, 31)}
_CHUNK_BYTES = 16 << 20
# Compressed bytes per read: after a defect this much is replayed a byte at a time (~0.5 s).
_GZIP_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class StreamDefect:
    """A part of a file that could not be read as lines at all (a broken gzip stream)."""

    file: str
    line_number: int
    reason: str
    raw_line: str


class _BrokenStream(Exception):
    pass


def hour_folder(landing_dir: Path, hour_start: datetime) -> Path:
    """The landing folder of one event-time hour (SPEC §7)."""
    return landing_dir / "events" / f"date={hour_start:%Y-%m-%d}" / f"hour={hour_start:%H}"


def landing_files(landing_dir: Path, hour_start: datetime) -> list[Path]:
    """The hour's landing files in a stable order; temporary and hidden files are not data."""
    folder = hour_folder(landing_dir, hour_start)
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.name.endswith(LANDING_SUFFIXES)
    )


def landing_bytes(landing_dir: Path, hour_start: datetime) -> int:
    """The size of the hour's landing files (one that vanishes meanwhile counts nothing)."""
    size = 0
    for path in landing_files(landing_dir, hour_start):
        with contextlib.suppress(FileNotFoundError):
            size += path.stat().st_size
    return size


@dataclass(frozen=True)
class UnreadFile:
    """A file under the landing folder that no partition will ever read, and why."""

    path: str
    reason: str


_FOLDERS = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})")


def unread_landing_files(landing_dir: Path, now: datetime) -> list[UnreadFile]:
    """Files under `events/` outside every hour the pipeline reads: not in a `date=/hour=`
    folder, not named .jsonl or .jsonl.gz, before the first partition, or in an hour beginning
    more than an hour after `now` (naive UTC; nearer ones are events a little ahead of the
    clock, read when their hour closes). Hidden and temporary files are not data."""
    root = landing_dir / "events"
    if not root.is_dir():
        return []
    unread = []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        folders = "/".join(path.relative_to(root).parts[:-1])
        matched = _FOLDERS.fullmatch(folders)
        try:
            hour = datetime.fromisoformat(f"{matched[1]}T{matched[2]}:00") if matched else None
        except ValueError:
            hour = None
        if hour is None:
            reason = "not in a date=YYYY-MM-DD/hour=HH folder"
        elif not path.name.endswith(LANDING_SUFFIXES):
            reason = "not a .jsonl or .jsonl.gz file"
        elif hour < FIRST_PARTITION:
            reason = f"before the first partition ({FIRST_PARTITION:%Y-%m-%d})"
        elif hour > now + timedelta(hours=1):
            reason = "in an hour more than an hour ahead"
        else:
            continue
        unread.append(UnreadFile(str(path), reason))
    return unread


def _plain_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK_BYTES):
            yield chunk


def _gzip_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes of every gzip member; everything before a defect is still yielded."""
    decompressor = zlib.decompressobj(wbits=31)
    member_started = False
    read = 0
    with open(path, "rb") as source:
        while compressed := source.read(_GZIP_READ_BYTES):
            read += len(compressed)
            while compressed:
                member_started = True
                before = decompressor.copy()
                try:
                    output = decompressor.decompress(compressed)
                except zlib.error as error:
                    # The failed call's output is lost: replay its input a byte at a time from the
                    # state before it, to keep every byte up to the damaged one.
                    yield _decompress_until_defect(before, compressed)
                    raise _BrokenStream(
                        f"corrupt gzip data ({error}) within compressed bytes "
                        f"{read - len(compressed)}-{read}: the rest of the file is unreadable"
                    ) from error
                yield output
                if not decompressor.eof:
                    break
                # A member ended; concatenated members (appended batches) continue the file.
                compressed = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                member_started = False
    if member_started:
        yield decompressor.flush()
        raise _BrokenStream("truncated gzip member: the file ends inside compressed data")


def _decompress_until_defect(decompressor: "zlib._Decompress", compressed: bytes) -> bytes:
    recovered = []
    for offset in range(len(compressed)):
        try:
            recovered.append(decompressor.decompress(compressed[offset:offset + 1]))
        except zlib.error:
            break
        if decompressor.eof:
            break
    return b"".join(recovered)


def _batch(file: str, first_line: int, data: bytes, ends: np.ndarray) -> pa.RecordBatch:
    """The consecutive lines of `data` that end (exclusive) at `ends`: the arrays point into
    `data` itself, so no Python object is made per line."""
    offsets = np.empty(len(ends) + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = ends
    lines = pa.Array.from_buffers(pa.binary(), len(ends),
                                  [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pa.record_batch(
        [
            pa.repeat(pa.scalar(file, pa.string()), len(ends)),
            pa.array(np.arange(first_line, first_line + len(ends), dtype=np.int64)),
            lines,
        ],
        schema=LINE_SCHEMA,
    )


def _file_lines(path: Path) -> tuple[list[pa.RecordBatch], list[StreamDefect]]:
    name = str(path)
    chunks = _gzip_chunks(path) if path.name.endswith(".gz") else _plain_chunks(path)
    batches: list[pa.RecordBatch] = []
    defects: list[StreamDefect] = []
    next_line = 1
    pending = b""
    try:
        for chunk in chunks:
            data = pending + chunk
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
            if len(ends):
                batches.append(_batch(name, next_line, data, ends + 1))  # newline included
                next_line += len(ends)
                data = data[int(ends[-1]) + 1:]
            pending = data
    except _BrokenStream as broken:
        defects.append(
            StreamDefect(name, next_line, str(broken), pending.decode("utf-8", "replace"))
        )
        pending = b""
    if pending:
        # The last line has no newline: the raw stage reads it all the same.
        batches.append(_batch(name, next_line, pending, np.array([len(pending)])))
    return batches, defects


def read_lines(paths: Sequence[Path]) -> tuple[pa.Table, list[StreamDefect]]:
    """Every line of the files, numbered from 1, and the defects that cut a file short."""
    # zlib and file reads release the GIL: files are read in parallel, results kept in order.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        per_file = list(pool.map(_file_lines, paths))
    batches = [batch for file_batches, _ in per_file for batch in file_batches]
    defects = [defect for _, file_defects in per_file for defect in file_defects]
    return pa.Table.from_batches(batches, schema=LINE_SCHEMA), defects


def arrival_times(hours: Sequence[tuple["TimeWindow", Sequence[Path]]]) -> pa.Table:
    """When each file landed (its modification time, naive UTC), and the window of the hour it
    was listed for: of two copies of an event id in one hour, the one that landed first is the
    event. A file gone since the listing has no arrival time."""
    names, times, starts, ends = [], [], [], []
    for window, paths in hours:
        for path in paths:
            try:
                modified = path.stat().st_mtime_ns // 1000
            except FileNotFoundError:
                modified = None
            names.append(str(path))
            times.append(modified)
            starts.append(utc_naive(window.start))
            ends.append(utc_naive(window.end))
    return pa.table([pa.array(names, pa.string()), pa.array(times, pa.timestamp("us")),
                     pa.array(starts, pa.timestamp("us")), pa.array(ends, pa.timestamp("us"))],
                    schema=ARRIVAL_SCHEMA)


DEFECT_SCHEMA = pa.schema([("file", pa.string()), ("line_number", pa.int64()),
                           ("reason", pa.string()), ("raw_line", pa.string())])


def classify_files(con: duckdb.DuckDBPyConnection, files: Sequence[Path],
                   window: "TimeWindow") -> list[StreamDefect]:
    """The raw stage's verdict on every line of `files` for `window` (its landing hour), as
    the temp table `classified` on `con`, and the parts of files no line could be read from, as
    the view `stream_defects` (file, line_number, reason, raw_line); those are also returned."""
    return classify_hours(con, [(window, files)])


def classify_hours(con: duckdb.DuckDBPyConnection,
                   hours: Sequence[tuple["TimeWindow", Sequence[Path]]]) -> list[StreamDefect]:
    """classify_files for the files of several landing hours in one statement, each file judged
    against its own hour's window."""
    lines, defects = read_lines([path for _window, paths in hours for path in paths])
    register_landing(con, lines, arrival_times(hours))
    con.register("stream_defects", pa.Table.from_pylist(
        [vars(defect) for defect in defects], schema=DEFECT_SCHEMA))
    # Every line comes from a file of an hour, so the statement's own window only bounds them.
    spanned = {"window_start": min(utc_naive(window.start) for window, _ in hours),
               "window_end": max(utc_naive(window.end) for window, _ in hours)}
    con.execute("create temp table classified as " + load_sql("raw", "raw_events"), spanned)
    return defects


def register_landing(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, arrivals: pa.Table | None = None
) -> None:
    """The raw stage's two inputs on `con`: the numbered lines and when each file landed (no
    arrival time for lines that come from no file)."""
    con.register("landing_lines", lines)
    con.register("landing_arrivals", ARRIVAL_SCHEMA.empty_table() if arrivals is None else arrivals)


@dataclass(frozen=True)
class Verdict:
    """The raw stage's judgement of one line: why it is rejected, or the event's time."""

    reason: str | None
    time: datetime | None = None

    @property
    def hour(self) -> datetime | None:
        """The event-time hour, naive UTC: the landing folder the event belongs in."""
        return None if self.time is None else self.time.replace(minute=0, second=0, microsecond=0)


def classify_event_lines(lines: Sequence[bytes]) -> list[Verdict]:
    """The raw stage's verdict on each line: its reject reason, or its event time if valid.

    The same SQL as the raw_events asset, and the only parse: whatever accepts events up front
    (the HTTP receiver, the Kafka consumer) decides validity and the landing hour exactly as the
    pipeline will read them, whatever the line holds (duplicate keys, deep nesting, odd times).
    """
    table = pa.table(
        {"file": pa.array([""] * len(lines), pa.string()),
         "line_number": pa.array(np.arange(1, len(lines) + 1, dtype=np.int64)),
         "line": pa.array(lines, pa.binary())},
        schema=LINE_SCHEMA,
    )
    with closing(compute_connection()) as con:
        register_landing(con, table)
        judged = {number: Verdict(reason, None if reason else time)
                  for number, reason, time in con.execute(
                      "select line_number, reject_reason, event_time from ("
                      + load_sql("raw", "raw_events") + ")",
                      _ANY_TIME,
                  ).fetchall()}
    # A blank line is skipped by the raw stage rather than judged.
    return [judged.get(number, Verdict("blank line")) for number in range(1, len(lines) + 1)]
