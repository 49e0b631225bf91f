"""Counters and a latency histogram, rendered in the Prometheus text exposition format."""

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

# A gauge source: called at each scrape, it gives (name, labels, value) samples.
GaugeSource = Callable[[], Iterable[tuple[str, dict[str, str], float]]]

# Landing writes are fsyncs: from sub-millisecond on a page cache that lies to seconds on a
# saturated disk.
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_HELP = {
    "telemetry_ingest_requests_total": ("counter", "HTTP requests by path and status code."),
    "telemetry_ingest_events_received_total": ("counter", "Events read from request bodies."),
    "telemetry_ingest_events_accepted_total": ("counter", "Events written to the landing folder."),
    "telemetry_ingest_events_rejected_total": ("counter", "Events refused by validation."),
    "telemetry_ingest_bytes_received_total": ("counter", "Request body bytes, as sent."),
    "telemetry_ingest_landing_files_total": ("counter", "Landing files written."),
    "telemetry_ingest_otlp_spans_ignored_total": (
        "counter",
        "OTLP spans that are not server spans.",
    ),
    "telemetry_ingest_forward_events_total": (
        "counter",
        "Events an event route forwarded, by route (a re-sent event counts again).",
    ),
    "telemetry_ingest_forward_retries_total": (
        "counter",
        "Sends to an event route's destination that failed and wait to be tried again.",
    ),
    "telemetry_ingest_forward_failed_files_total": (
        "counter",
        "Queued files an event route's destination refused, moved to failed/.",
    ),
    "telemetry_ingest_forward_events_unreadable_total": (
        "counter",
        "Accepted lines Python's json module cannot read, so no event route forwards them.",
    ),
    "telemetry_ingest_forward_queue_files": (
        "gauge",
        "Files waiting in an event route's queue (every process's).",
    ),
    "telemetry_ingest_forward_failed_files": ("gauge", "Files in an event route's failed/."),
}

# Shown only when there is something to show: a receiver without event routes has none.
_ONLY_WITH_SAMPLES = "telemetry_ingest_forward_"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _number(value: float) -> str:
    # `:g` would print a count of 1234567 as 1.23457e+06 and lose its last digits.
    return str(int(value)) if value.is_integer() else repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Thread-safe: request handlers run on a thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._write_buckets = [0] * len(WRITE_BUCKETS)
        self._write_count = 0
        self._write_sum = 0.0
        self._gauge_sources: list[GaugeSource] = []

    def add_gauges(self, source: GaugeSource) -> None:
        """Report `source`'s samples, read when the metrics are rendered."""
        self._gauge_sources.append(source)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        with self._lock:
            self._counters[name][tuple(sorted(labels.items()))] += amount

    def observe_write(self, seconds: float) -> None:
        with self._lock:
            self._write_count += 1
            self._write_sum += seconds
            for index, bound in enumerate(WRITE_BUCKETS):
                if seconds <= bound:
                    self._write_buckets[index] += 1

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters[name][tuple(sorted(labels.items()))]

    def render(self) -> str:
        lines: list[str] = []
        # Read outside the lock: a source may look at the disk.
        gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        for source in self._gauge_sources:
            for name, labels, value in source():
                gauges[name][tuple(sorted(labels.items()))] = float(value)
        with self._lock:
            for name, (kind, text) in _HELP.items():
                samples = gauges[name] if kind == "gauge" else self._counters.get(name, {})
                if not samples and name.startswith(_ONLY_WITH_SAMPLES):
                    continue
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for labels, amount in sorted(samples.items()):
                    lines.append(f"{name}{_labels(labels)} {_number(amount)}")
            name = "telemetry_ingest_landing_write_seconds"
            lines += [
                f"# HELP {name} Time to write and fsync one request's landing files.",
                f"# TYPE {name} histogram",
            ]
            for bound, count in zip(WRITE_BUCKETS, self._write_buckets, strict=True):
                lines.append(f'{name}_bucket{{le="{bound:g}"}} {count}')
            lines += [
                f'{name}_bucket{{le="+Inf"}} {self._write_count}',
                f"{name}_sum {self._write_sum:.6f}",
                f"{name}_count {self._write_count}",
            ]
        return "\n".join(lines) + "\n"
