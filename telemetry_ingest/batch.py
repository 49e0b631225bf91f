"""Batch jobs as a source: a job's console output as log lines, and one availability event per
run, so that a batch job has availability and an SLO like a service.

`telemetry job run --scenario S -- COMMAND…` runs the command, passes its stdout and stderr
through to the terminal as they come, and keeps each line with its stream and the time it was
read. When the command ends, its run (`context.job_runs`) and its lines
(`context.console_lines`) are recorded in the lake and one event lands in the landing folder:
the scenario, latency = the run's duration, success = exit status 0. `telemetry job ingest` does
the same for console output that already exists as a file (a mainframe job's spooled output).
"""

import hashlib
import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
from telemetry_client.events import (
    STATUS_SERVICE_ERROR,
    STATUS_SUCCESS,
    build_event,
    format_time,
)

from telemetry_core.annotations import Annotation, AnnotationStore, platform_id
from telemetry_core.landing import hour_folder
from telemetry_core.recorded import RecordedTable
from telemetry_core.sql import utc_naive
from telemetry_ingest.writer import LandingWriter

# A console line longer than this is kept cut (and marked so); the terminal still gets it whole.
MAX_LINE_CHARS = 8192
SOURCE = "batch"

RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("scenario_id", pa.string()),
    ("partner_id", pa.string()),
    ("command", pa.string()),
    ("started_at", pa.timestamp("us")),
    ("ended_at", pa.timestamp("us")),
    ("exit_status", pa.int32()),
    ("succeeded", pa.bool_()),
    ("lines", pa.int64()),
    ("source", pa.string()),
    ("event_file", pa.string()),
])
LINES_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("scenario_id", pa.string()),
    ("line_number", pa.int64()),
    ("stream", pa.string()),
    ("logged_at", pa.timestamp("us")),
    ("text", pa.string()),
    ("truncated", pa.bool_()),
])


def job_runs(lake_dir: Path) -> RecordedTable:
    return RecordedTable(lake_dir, "context", "job_runs", RUNS_SCHEMA,
                         key=lambda row: (row["run_id"],),
                         day_of=lambda row: row["started_at"].date(),
                         order=lambda row: (row["started_at"], row["run_id"]))


def console_lines(lake_dir: Path) -> RecordedTable:
    # Recorded under the day the run started (`record` says so), like the run: one day holds a
    # run and all its lines, even those after midnight.
    return RecordedTable(lake_dir, "context", "console_lines", LINES_SCHEMA,
                         key=lambda row: (row["run_id"], row["line_number"]),
                         day_of=lambda row: row["logged_at"].date(),
                         order=lambda row: (row["run_id"], row["line_number"]))


@dataclass
class ConsoleLine:
    stream: str
    at: datetime
    text: str
    truncated: bool = False


@dataclass
class JobRun:
    scenario_id: str
    partner_id: str
    command: str
    started_at: datetime
    ended_at: datetime
    exit_status: int
    lines: list[ConsoleLine] = field(default_factory=list)
    source: str = "job run"
    # The event's operation: the program's name, or the log file's.
    operation: str = "job"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0


def _now() -> datetime:
    return utc_naive(datetime.now(UTC))


def _kept(raw: bytes) -> tuple[str, bool]:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    return text[:MAX_LINE_CHARS], len(text) > MAX_LINE_CHARS


# After the command exits, how long output from what it left running (a background process
# holding its stdout) is still read before the run is recorded without it.
AFTER_EXIT_S = 1.0


class _SignalsPassedOn:
    """While the command runs, SIGTERM and SIGHUP sent to this process are passed on to it, so
    that a scheduler stopping the job stops the command and its run is still recorded. SIGINT
    is ignored here, as time(1) does: a terminal's Ctrl-C reaches the command itself, which is
    in the same foreground process group.

    The handlers are set before the command starts: a handled signal is reset to its default in
    the command, while one this process inherited as ignored (from a scheduler, say) would stay
    ignored there and the command could never be stopped."""

    PASSED_ON = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.previous: dict[int, Any] = {}
        # Signal handlers belong to the main thread; a library caller elsewhere keeps its own.
        self.active = threading.current_thread() is threading.main_thread()

    def _pass_on(self, signum: int, _frame: Any) -> None:
        if self.process is None:
            raise SystemExit(128 + signum)  # nothing started yet: nothing to record
        self.process.send_signal(signum)

    def __enter__(self) -> "_SignalsPassedOn":
        if self.active:
            self.previous = {number: signal.signal(number, self._pass_on)
                             for number in self.PASSED_ON}
        return self

    def started(self, process: subprocess.Popen) -> None:
        self.process = process
        if self.active:
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *_exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def capture(command: Sequence[str], stdout: BinaryIO, stderr: BinaryIO,
            ) -> tuple[int, list[tuple[str, datetime, bytes]]]:
    """Run `command`, copying its output to `stdout` and `stderr` as it comes; its exit status
    and its lines (stream, time read, bytes) in the order they were read. A terminal that goes
    away (a closed pipe) stops the copying, not the reading."""
    with _SignalsPassedOn() as signals:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=None)
        signals.started(process)
        try:
            return _read_until_exit(process, stdout, stderr)
        finally:
            for pipe in (process.stdout, process.stderr):
                pipe.close()
            process.wait()


MAX_PARTIAL_BYTES = 4 * MAX_LINE_CHARS


def _read_until_exit(process: subprocess.Popen, stdout: BinaryIO, stderr: BinaryIO,
                     ) -> tuple[int, list[tuple[str, datetime, bytes]]]:
    outputs: dict[Any, tuple[str, BinaryIO | None]] = {
        process.stdout: ("stdout", stdout), process.stderr: ("stderr", stderr)}
    partial = {name: b"" for name, _ in outputs.values()}
    lines: list[tuple[str, datetime, bytes]] = []
    exited_at = None
    with selectors.DefaultSelector() as selector:
        for pipe in outputs:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select(timeout=0.2):
                name, terminal = outputs[key.fileobj]
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                if terminal is not None:
                    try:
                        terminal.write(chunk)
                        terminal.flush()
                    except OSError:
                        outputs[key.fileobj] = (name, None)  # the terminal went away
                at = _now()
                *complete, rest = (partial[name] + chunk).split(b"\n")
                lines += [(name, at, line) for line in complete]
                # A line with no end in sight is kept cut, not grown without bound.
                if len(rest) > MAX_PARTIAL_BYTES:
                    lines.append((name, at, rest))
                    rest = b""
                partial[name] = rest
            if process.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > AFTER_EXIT_S:
                    break
    lines += [(name, _now(), rest) for name, rest in partial.items() if rest]
    return process.wait(), lines


def run_job(command: Sequence[str], scenario_id: str, partner_id: str, stdout: BinaryIO,
            stderr: BinaryIO) -> JobRun:
    """Run the command as a batch job; a command that cannot start is a failed run (127)."""
    started = _now()
    clock = time.monotonic()
    try:
        status, raw = capture(command, stdout, stderr)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as error:
        # Popen's own errors: the command could not start.
        status, raw = 127, [("stderr", _now(), f"telemetry job run: {error}".encode())]
        stderr.write(raw[0][2] + b"\n")
        stderr.flush()
    # The wall clock may step during a long job; the duration is the monotonic clock's.
    ended = started + timedelta(seconds=time.monotonic() - clock)
    lines = [ConsoleLine(stream, at, *_kept(text)) for stream, at, text in raw]
    # A signal's death is -N from Popen; as a shell reports it, 128 + N.
    status = 128 - status if status < 0 else status
    return JobRun(scenario_id, partner_id, shlex.join(command), started, ended, status, lines,
                  operation=Path(command[0]).name)


EXIT_PATTERNS = (re.compile(r"\bMAXCC\s*=\s*(\d+)"), re.compile(r"\bCOND CODE\s+(\d+)"),
                 re.compile(r"\bRC\s*=\s*(\d+)"))


def exit_status_in(lines: Iterable[str]) -> int | None:
    """The highest return code a console log states (`MAXCC=`, `COND CODE`, `RC=`), if any."""
    found = [int(match.group(1)) for line in lines for pattern in EXIT_PATTERNS
             for match in pattern.finditer(line)]
    return max(found) if found else None


def ingest_file(path: Path, scenario_id: str, partner_id: str, started: datetime,
                ended: datetime, exit_status: int | None) -> JobRun:
    """A job run from console output already written to a file (one stream, `console`); its
    lines take the time the run ended, as the file gives no other."""
    texts = [line.rstrip("\r") for line in path.read_text(errors="replace").splitlines()]
    status = exit_status if exit_status is not None else exit_status_in(texts)
    # The same log ingested again (a cron over a spool folder) is the same run, landed once.
    run_id = hashlib.sha256("\x1f".join([scenario_id, str(path.resolve()), *texts]).encode()
                            ).hexdigest()[:32]
    if status is None:
        raise ValueError(f"{path} states no return code (MAXCC=, COND CODE, RC=): give "
                         "--exit-status")
    return JobRun(scenario_id, partner_id, str(path), utc_naive(started), utc_naive(ended),
                  status, [ConsoleLine("console", utc_naive(ended), text[:MAX_LINE_CHARS],
                                       len(text) > MAX_LINE_CHARS) for text in texts],
                  source="job ingest", operation=path.name, run_id=run_id)


def record(run: JobRun, lake_dir: Path, landing_dir: Path) -> Path:
    """The run's lines in the lake, its availability event in the landing folder (named by its
    content's hash: recording a run twice lands it once), an annotation if it failed, and last
    its row, which says the rest is there."""
    console_lines(lake_dir).add(
        ({"run_id": run.run_id, "scenario_id": run.scenario_id, "line_number": number,
          "stream": line.stream, "logged_at": line.at, "text": line.text,
          "truncated": line.truncated}
         for number, line in enumerate(run.lines, start=1)), day=run.started_at.date())
    event = build_event(
        event_id=f"job-{run.run_id}", time=format_time(run.ended_at),
        operation=run.operation, request_type="Batch",
        latency_ms=(run.ended_at - run.started_at).total_seconds() * 1000,
        request_status=STATUS_SUCCESS if run.succeeded else STATUS_SERVICE_ERROR,
        caller=run.partner_id, scenario=run.scenario_id, partner=run.partner_id,
    )
    landed = LandingWriter(landing_dir).write_file(
        hour_folder(landing_dir, run.ended_at), [json.dumps(event).encode()], SOURCE)
    if not run.succeeded:
        AnnotationStore(lake_dir).add([Annotation(
            starts_at=run.started_at, ends_at=run.ended_at, scope="scenario",
            scope_value=run.scenario_id, kind="job_failed",
            text=f"batch job {run.command!r} failed with exit status {run.exit_status}"[:2000],
            source=f"platform:{run.source}", annotation_id=platform_id("job", run.run_id))])
    job_runs(lake_dir).add([{
        "run_id": run.run_id, "scenario_id": run.scenario_id, "partner_id": run.partner_id,
        "command": run.command, "started_at": run.started_at, "ended_at": run.ended_at,
        "exit_status": run.exit_status, "succeeded": run.succeeded, "lines": len(run.lines),
        "source": run.source, "event_file": str(landed),
    }])
    return landed

