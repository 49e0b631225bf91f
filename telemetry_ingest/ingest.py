"""Validate a batch of event lines and land the valid ones: shared by HTTP, OTLP and Kafka."""

import time
from dataclasses import dataclass
from pathlib import Path

from telemetry_core.landing import classify_event_lines
from telemetry_ingest.metrics import Metrics
from telemetry_ingest.writer import LandingWriter, route_by_hour


@dataclass(frozen=True)
class IngestResult:
    """How many lines landed, and each refused line's index in the batch with the reason."""

    accepted: int
    rejected: list[tuple[int, str]]
    files: list[Path]


class Ingestor:
    def __init__(self, landing_dir: Path, metrics: Metrics | None = None) -> None:
        self.writer = LandingWriter(landing_dir)
        self.metrics = metrics or Metrics()

    def ingest(self, lines: list[bytes], source: str) -> IngestResult:
        """Returns only once every accepted line is durable in the landing folder."""
        reasons = classify_event_lines(lines)
        valid_at = [index for index, reason in enumerate(reasons) if reason is None]
        routed = route_by_hour([lines[index] for index in valid_at])
        rejected = [(index, reason) for index, reason in enumerate(reasons) if reason is not None]
        if routed.unroutable:
            rejected += [(valid_at[index], reason) for index, reason in routed.unroutable]
            rejected.sort()
        files: list[Path] = []
        if routed.hours:
            started = time.perf_counter()
            files = self.writer.write_hours(routed.hours, source)
            self.metrics.observe_write(time.perf_counter() - started)
            self.metrics.inc("telemetry_ingest_landing_files_total", len(files), source=source)
        accepted = len(lines) - len(rejected)
        self.metrics.inc("telemetry_ingest_events_received_total", len(lines), source=source)
        self.metrics.inc("telemetry_ingest_events_accepted_total", accepted, source=source)
        self.metrics.inc("telemetry_ingest_events_rejected_total", len(rejected), source=source)
        return IngestResult(accepted, rejected, files)
