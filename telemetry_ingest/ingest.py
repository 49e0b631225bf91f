"""Judge a batch of event lines and land the valid ones: shared by HTTP, OTLP and Kafka."""

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry_core.landing import classify_event_lines
from telemetry_core.settings import FIRST_PARTITION
from telemetry_core.sql import utc_naive
from telemetry_ingest.metrics import Metrics
from telemetry_ingest.settings import DEFAULT_MAX_FUTURE
from telemetry_ingest.writer import LandingWriter


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
        self.metrics = metrics or Metrics()
        self.max_future = max_future

    def ingest(self, lines: list[bytes], source: str) -> IngestResult:
        """Returns only once every accepted line is durable in the landing folder."""
        # An event acknowledged here must be one some partition reads: none before the first
        # partition, none so far ahead that a clock is clearly wrong.
        latest = utc_naive(datetime.now(UTC)) + self.max_future
        hours: dict[datetime, list[bytes]] = defaultdict(list)
        rejected: list[tuple[int, str]] = []
        for index, verdict in enumerate(classify_event_lines(lines)):
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
