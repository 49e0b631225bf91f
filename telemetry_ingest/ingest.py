"""Judge a batch of event lines and land the valid ones: shared by HTTP, OTLP and Kafka."""

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry_core.landing import Verdict, classify_event_lines
from telemetry_core.settings import FIRST_PARTITION
from telemetry_core.sql import utc_naive
from telemetry_ingest.metrics import Metrics
from telemetry_ingest.settings import DEFAULT_MAX_FUTURE
from telemetry_ingest.writer import LandingWriter


class _Waiting:
    """One request's lines, waiting for their verdicts."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.verdicts: list[Verdict] | None = None
        self.error: BaseException | None = None
        # Set when its verdicts are in, or when it is handed the lead of the next run.
        self.woken = threading.Event()


class SharedJudge:
    """Judges the lines of concurrent requests in one run of the raw stage's SQL.

    Each run has a fixed cost (≈12 ms here, planning a long statement) beside ≈3 µs a line, so
    requests that arrive while a run is going are judged together in the next one. Every line's
    verdict depends on that line alone, so combining changes no verdict. One request leads each
    run; when it is done it hands the lead to the first of those that arrived meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._running = False

    def classify(self, lines: list[bytes]) -> list[Verdict]:
        mine = _Waiting(lines)
        with self._lock:
            self._waiting.append(mine)
            leads, self._running = not self._running, True
        if not leads:
            mine.woken.wait()
        if mine.verdicts is None and mine.error is None:
            self._run()
        if mine.error is not None:
            raise mine.error
        assert mine.verdicts is not None
        return mine.verdicts

    def _run(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            verdicts = classify_event_lines([line for part in batch for line in part.lines])
            start = 0
            for part in batch:
                part.verdicts = verdicts[start:start + len(part.lines)]
                start += len(part.lines)
        except BaseException as error:
            for part in batch:
                part.error = error
        with self._lock:
            if self._waiting:
                self._waiting[0].woken.set()
            else:
                self._running = False
        for part in batch:
            part.woken.set()


@dataclass(frozen=True)
class IngestResult:
    """How many lines landed, and each refused line's index in the batch with the reason."""

    accepted: int
    rejected: list[tuple[int, str]]
    files: list[Path]


class Ingestor:
    def __init__(self, landing_dir: Path, metrics: Metrics | None = None,
                 max_future: timedelta = DEFAULT_MAX_FUTURE) -> None:
        self.writer = LandingWriter(landing_dir)
        self.judge = SharedJudge()
        self.metrics = metrics or Metrics()
        self.max_future = max_future

    def ingest(self, lines: list[bytes], source: str) -> IngestResult:
        """Returns only once every accepted line is durable in the landing folder."""
        # An event acknowledged here must be one some partition reads: none before the first
        # partition, none so far ahead that a clock is clearly wrong.
        latest = utc_naive(datetime.now(UTC)) + self.max_future
        hours: dict[datetime, list[bytes]] = defaultdict(list)
        rejected: list[tuple[int, str]] = []
        for index, verdict in enumerate(self.judge.classify(lines)):
            if verdict.reason is not None:
                rejected.append((index, verdict.reason))
            elif verdict.time < FIRST_PARTITION:
                rejected.append((index, f"time is before {FIRST_PARTITION:%Y-%m-%d}, the first "
                                        "hour the pipeline processes"))
            elif verdict.time > latest:
                rejected.append((index, f"time is in the future (more than "
                                        f"{self.max_future // timedelta(minutes=1)} minutes "
                                        "ahead of the receiver's clock)"))
            else:
                hours[verdict.hour].append(lines[index])
        files: list[Path] = []
        if hours:
            started = time.perf_counter()
            files = self.writer.write_hours(dict(hours), source)
            self.metrics.observe_write(time.perf_counter() - started)
            self.metrics.inc("telemetry_ingest_landing_files_total", len(files), source=source)
        accepted = len(lines) - len(rejected)
        self.metrics.inc("telemetry_ingest_events_received_total", len(lines), source=source)
        self.metrics.inc("telemetry_ingest_events_accepted_total", accepted, source=source)
        self.metrics.inc("telemetry_ingest_events_rejected_total", len(rejected), source=source)
        return IngestResult(accepted, rejected, files)
