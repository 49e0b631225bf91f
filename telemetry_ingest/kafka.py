"""Kafka → landing folder: consume `logging_raw`, land each batch durably, then commit.

At-least-once: offsets are committed only after the batch's landing files (and the dead-letter
file for its rejected lines) are fsynced and renamed, so a crash re-delivers at most the batch
in hand. Re-delivered events carry the same ids, which the pipeline deduplicates.
"""

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telemetry_ingest.ingest import Ingestor
from telemetry_ingest.payload import PayloadError, split_events
from telemetry_ingest.settings import DEFAULT_MAX_FUTURE

log = logging.getLogger("telemetry_ingest.kafka")


class _Throttle(logging.Filter):
    """Each distinct message at most once per interval: during a broker outage librdkafka
    reports the same failed connection every few tens of milliseconds."""

    def __init__(self, interval: float = 30.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"\d+", "#", record.getMessage())
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


client_log = logging.getLogger("telemetry_ingest.kafka.client")
client_log.addFilter(_Throttle())


@dataclass
class ConsumerStats:
    messages: int = 0
    accepted: int = 0
    rejected: int = 0
    commits_failed: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class KafkaSource:
    bootstrap_servers: str
    topic: str
    group_id: str
    # Static assignment of every partition, resuming from the group's committed offsets,
    # instead of a group subscription: no join (tens of seconds) and no rebalancing.
    assign: bool = False
    max_batch: int = 5000
    max_wait_seconds: float = 1.0
    max_future: timedelta = DEFAULT_MAX_FUTURE
    config: dict[str, Any] = field(default_factory=dict)


def consume(
    source: KafkaSource,
    landing_dir: Path,
    stop: threading.Event,
    forward: Callable[[list[Path]], None] | None = None,
) -> ConsumerStats:
    """Run until `stop` is set; broker outages are waited out, never fatal. `forward`, given
    each batch's landed files, queues them durably for the event routes before the commit."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": source.bootstrap_servers,
            "group.id": source.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "reconnect.backoff.max.ms": 2000,
            "error_cb": _log_kafka_error,
            "logger": client_log,
            **source.config,
        }
    )
    ingestor = Ingestor(landing_dir, max_future=source.max_future)
    stats = ConsumerStats()
    try:
        if source.assign:
            if not _assign_all(consumer, source.topic, stop):
                return stats
        else:
            consumer.subscribe([source.topic])
        last_report = time.monotonic()
        while not stop.is_set():
            messages = consumer.consume(source.max_batch, source.max_wait_seconds)
            batch = [message for message in messages if _usable(message)]
            if batch:
                _land_and_commit(consumer, ingestor, landing_dir, batch, stats, stop, forward)
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                log.info("consumed %s", stats)
    finally:
        consumer.close()
    return stats


def _assign_all(consumer: Any, topic: str, stop: threading.Event) -> bool:
    from confluent_kafka import KafkaException, TopicPartition

    while not stop.is_set():
        try:
            metadata = consumer.list_topics(topic, timeout=5)
            described = metadata.topics.get(topic)
            if described is not None and described.error is None and described.partitions:
                consumer.assign([TopicPartition(topic, p) for p in sorted(described.partitions)])
                log.info("assigned %s partitions %s", topic, sorted(described.partitions))
                return True
            log.info("topic %s not available yet; waiting", topic)
        except KafkaException as error:
            log.warning("cannot read metadata for %s: %s", topic, error)
        stop.wait(1.0)
    return False


def _usable(message: Any) -> bool:
    error = message.error()
    if error is None:
        return True
    log.warning("kafka: %s", error)
    return False


def _land_and_commit(
    consumer: Any,
    ingestor: Ingestor,
    landing_dir: Path,
    batch: Sequence[Any],
    stats: ConsumerStats,
    stop: threading.Event,
    forward: Callable[[list[Path]], None] | None = None,
) -> None:
    from confluent_kafka import KafkaException, TopicPartition

    lines: list[bytes] = []
    origins: list[Any] = []
    dead: list[dict[str, Any]] = []
    for message in batch:
        value = message.value() or b""
        try:
            events = split_events(value).lines
        except PayloadError as error:
            dead.append(_dead_letter(message, error.message, value))
            continue
        lines += events
        origins += [message] * len(events)
    while True:
        try:
            result = ingestor.ingest(lines, "kafka")
            rejected = dead + [
                _dead_letter(origins[i], reason, lines[i]) for i, reason in result.rejected
            ]
            if rejected:
                _write_dead_letters(ingestor, landing_dir, rejected)
            if forward is not None and result.files:
                forward(result.files)
            break
        except OSError:
            # Not committing is not enough: the consumer's position has moved past the batch.
            # Retry the same lines until the disk takes them or the consumer is stopped.
            log.exception("landing write failed; retrying the batch")
            if stop.wait(2.0):
                _rewind(consumer, batch)
                return
    stats.batches += 1
    stats.messages += len(batch)
    stats.accepted += result.accepted
    stats.rejected += len(rejected)
    next_offsets: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic(), message.partition())
        next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
            asynchronous=False,
        )
    except KafkaException as error:
        # The events are landed; an uncommitted offset only means re-delivery after a restart.
        stats.commits_failed += 1
        log.warning("offset commit failed (events are landed, may be re-delivered): %s", error)


def _rewind(consumer: Any, batch: Sequence[Any]) -> None:
    from confluent_kafka import TopicPartition

    first: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic(), message.partition())
        first[key] = min(first.get(key, message.offset()), message.offset())
    for (topic, partition), offset in first.items():
        consumer.seek(TopicPartition(topic, partition, offset))


def _dead_letter(message: Any, reason: str, raw: bytes) -> dict[str, Any]:
    return {
        "reason": reason,
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp_ms": message.timestamp()[1],
        "raw": raw.decode("utf-8", "replace"),
    }


def _write_dead_letters(ingestor: Ingestor, landing_dir: Path, dead: list[dict[str, Any]]) -> None:
    """Rejected lines kept, with their reason, outside `events/` where the pipeline reads."""
    by_day: dict[str, list[bytes]] = {}
    for entry in dead:
        # The broker's timestamp, not the clock: a re-delivered batch lands in the same file.
        day = datetime.fromtimestamp(max(entry["timestamp_ms"], 0) / 1000, UTC)
        by_day.setdefault(f"{day:%Y-%m-%d}", []).append(json.dumps(entry).encode())
    for day, entries in by_day.items():
        folder = landing_dir / "rejected" / "source=kafka" / f"date={day}"
        ingestor.writer.write_file(folder, entries, "kafka")


def _log_kafka_error(error: Any) -> None:
    client_log.warning("kafka: %s", error)
