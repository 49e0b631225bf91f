"""The Kafka consumer against a real Kafka-protocol broker on loopback."""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.events import as_lines, wire_event
from tests.telemetry_ingest.servers import Broker, ConsumerProcess, landed_files, landed_ids

TOPIC = "logging_raw"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tmp_path / "broker.log").start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


def produce(broker: Broker, values: list[bytes], partitions: int | None = None) -> None:
    """Send `values`; with `partitions`, value n goes to partition n % partitions."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for n, value in enumerate(values):
        if partitions:
            producer.produce(TOPIC, value=value, partition=n % partitions)
        else:
            producer.produce(TOPIC, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def event_values(prefix: str, count: int) -> list[bytes]:
    return as_lines(*(wire_event(f"{prefix}-{n}", f"2026-11-20T{9 + n % 3:02d}:{n % 60:02d}:00Z")
                      for n in range(count)))


def lines_by_id(landing: Path) -> dict[str, set[bytes]]:
    seen: dict[str, set[bytes]] = defaultdict(set)
    for path in landed_files(landing):
        for line in path.read_bytes().splitlines():
            seen[json.loads(line)["id"]].add(line)
    return seen


def test_consumer_killed_mid_stream_loses_nothing(
    broker: Broker, tmp_path: Path, landing: Path
) -> None:
    broker.create_topic(TOPIC, partitions=3)
    values = event_values("k", 20_000)
    invalid = [b"{not json", json.dumps({"id": "no-time"}).encode()]
    # Several events in one message, as NDJSON, are accepted too.
    batched = b"\n".join(
        [json.dumps(wire_event("multi-1")).encode(), json.dumps(wire_event("multi-2")).encode()]
    )
    producer = threading.Thread(
        target=produce, args=(broker, values[:10_000] + invalid + [batched] + values[10_000:])
    )
    consumer = ConsumerProcess(broker, landing, tmp_path / "consumer.log", TOPIC).start()
    producer.start()
    try:
        wait_until(lambda: len(landed_ids(landing)) >= 3_000, 60, "the first events to land")
        consumer.kill()
        killed_at = len(landed_ids(landing))
        consumer.start()
        producer.join(timeout=60)
        expected = {f"k-{n}" for n in range(20_000)} | {"multi-1", "multi-2"}
        wait_until(lambda: set(landed_ids(landing)) >= expected, 90, "every event to land")
        # A clean stop commits what it landed: after a restart, only new events arrive.
        assert consumer.stop() == 0
        before_restart = landed_ids(landing)
        consumer.start()
        produce(broker, event_values("late", 100))
        wait_until(lambda: len(landed_ids(landing)) == len(expected) + 100, 60, "late events")
        time.sleep(1.0)
        after_restart = landed_ids(landing)
    finally:
        exit_code = consumer.stop()
    assert exit_code == 0
    assert killed_at < 20_000
    assert after_restart - before_restart == {f"late-{n}": 1 for n in range(100)}

    seen = lines_by_id(landing)
    assert set(seen) == expected | {f"late-{n}" for n in range(100)}
    # A re-delivered event may land twice, but only as the very same line.
    assert all(len(lines) == 1 for lines in seen.values())
    # The restart resumed from the committed offsets: at most the batch in hand at the kill
    # (500 messages) came again, not the whole topic.
    landed_twice = sum(landed_ids(landing).values()) - len(seen)
    assert landed_twice <= 500

    dead = [
        json.loads(line)
        for path in sorted((landing / "rejected").rglob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    assert sorted((d["raw"], d["reason"]) for d in dead) == [
        ('{"id": "no-time"}', "missing required field time"),
        ("{not json", "not valid JSON"),
    ]


def test_consumer_rides_out_a_broker_restart(broker: Broker, tmp_path: Path, landing: Path) -> None:
    broker.create_topic(TOPIC, partitions=3)
    before = event_values("before", 1_500)
    consumer = ConsumerProcess(broker, landing, tmp_path / "consumer.log", TOPIC).start()
    try:
        produce(broker, before, partitions=3)
        wait_until(lambda: len(landed_ids(landing)) == 1_500, 60, "events sent before the restart")
        broker.kill()
        time.sleep(1.0)
        broker.start()
        # The test broker keeps its log in memory only. Replaying the same messages to the same
        # partitions rebuilds the log a persistent broker would still have, offsets included,
        # so the consumer must carry on from its position without reading them again.
        broker.create_topic(TOPIC, partitions=3)
        produce(broker, before, partitions=3)
        produce(broker, event_values("after", 300), partitions=3)
        wait_until(lambda: len(landed_ids(landing)) == 1_800, 60, "events sent after the restart")
        assert consumer.process is not None and consumer.process.poll() is None
    finally:
        exit_code = consumer.stop()
    assert exit_code == 0
    assert max(landed_ids(landing).values()) == 1


def test_consumer_in_a_group_lands_events(broker: Broker, tmp_path: Path, landing: Path) -> None:
    """The default mode, a group subscription; joining the group takes this broker ~20 s."""
    broker.create_topic(TOPIC, partitions=2)
    produce(broker, event_values("group", 200))
    consumer = ConsumerProcess(
        broker, landing, tmp_path / "consumer.log", TOPIC, assign=False
    ).start()
    try:
        wait_until(lambda: len(landed_ids(landing)) == 200, 90, "the group's events")
    finally:
        exit_code = consumer.stop()
    assert exit_code == 0
    assert max(landed_ids(landing).values()) == 1


def test_poison_messages_never_stop_the_consumer(broker: Broker, tmp_path: Path,
                                                 landing: Path) -> None:
    """Messages the raw stage accepts but Python's json module chokes on land as events; one
    that cannot be split is dead-lettered; the messages behind them land; restarts stay clean."""
    broker.create_topic(TOPIC, partitions=1)
    deep = (b'{"id":"deep","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},"nested":'
            + b"[" * 5000 + b"]" * 5000 + b"}")
    duplicate_time = (b'{"id":"dup","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},'
                      b'"time":null}')
    deep_array = b"[" + deep + b"]"
    produce(broker, [deep, duplicate_time, deep_array, *event_values("behind", 100)])
    consumer = ConsumerProcess(broker, landing, tmp_path / "consumer.log", TOPIC).start()
    try:
        wait_until(lambda: len(landed_files(landing)) > 0
                   and sum(len(p.read_bytes().splitlines()) for p in landed_files(landing)) == 102,
                   60, "the events behind the poison messages")
        assert consumer.process is not None and consumer.process.poll() is None
    finally:
        assert consumer.stop() == 0
    landed = [line for path in landed_files(landing) for line in path.read_bytes().splitlines()]
    assert deep in landed and duplicate_time in landed
    dead = [json.loads(line) for path in sorted((landing / "rejected").rglob("*.jsonl"))
            for line in path.read_bytes().splitlines()]
    assert [entry["reason"] for entry in dead] == [
        "JSON array nested too deeply to read; send NDJSON"]
    # Committed past them: a restart lands nothing again.
    consumer.start()
    try:
        time.sleep(3.0)
        assert consumer.process is not None and consumer.process.poll() is None
    finally:
        assert consumer.stop() == 0
    assert len([line for path in landed_files(landing)
                for line in path.read_bytes().splitlines()]) == 102
