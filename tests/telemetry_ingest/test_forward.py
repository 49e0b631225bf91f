"""Event routing against real parts: the receiver and the Kafka consumer as processes, a
Kafka-protocol broker and HTTP destinations on loopback."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from tests.events import ndjson, wire_event
from tests.helpers import REPO, free_port
from tests.telemetry_ingest.servers import Broker, ConsumerProcess, Receiver, landed_ids


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the module: each test uses topics of its own."""
    server = Broker(tmp_path_factory.mktemp("broker") / "broker.log").start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def write_routes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return path


def routed_receiver(tmp_path: Path, routes: Path) -> Receiver:
    return Receiver(tmp_path / "landing", tmp_path / "receiver.log",
                    TELEMETRY_ROUTES=str(routes), TELEMETRY_DATA_DIR=str(tmp_path / "data"))


def route_dir(tmp_path: Path, route: str, folder: str) -> Path:
    return tmp_path / "data" / "forward" / route / folder


def queued(tmp_path: Path, route: str) -> list[str]:
    return sorted(p.name for p in route_dir(tmp_path, route, "queue").iterdir())


def batch(prefix: str, count: int, matching: str = "GetQuote", other: str = "ListOrders",
          ) -> tuple[bytes, set[str], set[str]]:
    """`count` events, every other one with the `matching` operation; the body, the ids of
    those that match and of the others."""
    events = [wire_event(f"{prefix}-{n}", operation=matching if n % 2 == 0 else other)
              for n in range(count)]
    ids = [e["id"] for e in events]
    return ndjson(*events), set(ids[0::2]), set(ids[1::2])


def topic_messages(broker: Broker, topic: str, until: set[str], timeout: float = 30.0,
                   ) -> list[tuple[str, bytes]]:
    """(key, value) of every message on `topic`, read from its start until every id of `until`
    is among the keys (and half a second more, for anything that should not be there)."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "forward-reader",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        seen: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout
        extra = None
        while time.monotonic() < (extra or deadline):
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    seen.append((message.key().decode(), message.value()))
            if extra is None and {key for key, _ in seen} >= until:
                extra = time.monotonic() + 0.5
        return seen
    finally:
        consumer.close()


class Destination:
    """An HTTP endpoint on loopback that records each POST and answers per `status(path, body,
    calls so far)`."""

    def __init__(self, status, port: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self.posts: list[dict] = []
        self._status = status
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with outer._lock:
                    calls = sum(1 for p in outer.posts if p["path"] == self.path)
                    code = outer._status(self.path, body, calls)
                    outer.posts.append({
                        "path": self.path, "status": code, "key": self.headers["Idempotency-Key"],
                        "ids": [json.loads(line)["id"] for line in body.splitlines()],
                        "type": self.headers["Content-Type"]})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def ids(self, path: str) -> Counter:
        with self._lock:
            return Counter(i for p in self.posts if p["path"] == path and p["status"] == 200
                           for i in p["ids"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_matching_events_go_to_the_topic_and_every_event_lands(broker: Broker,
                                                                tmp_path: Path) -> None:
    broker.create_topic("quotes", partitions=2)
    routes = write_routes(tmp_path, f"""
events:
  - name: quotes-to-kafka
    match: {{data.baseData.operationName: "*quote*"}}   # case-insensitive
    kafka: {{bootstrap: "{broker.bootstrap}", topic: quotes}}
""")
    receiver = routed_receiver(tmp_path, routes).start()
    try:
        matching, others = set(), set()
        for n in range(5):
            body, match, other = batch(f"b{n}", 40, matching="getQUOTE" if n % 2 else "GetQuote")
            assert receiver.post("/v1/events", body)[0] == 200
            matching |= match
            others |= other
        messages = topic_messages(broker, "quotes", matching)
        wait_until(lambda: receiver.metric("telemetry_ingest_forward_queue_files") == 0, 10,
                   "the queue to empty")
        _, metrics = receiver.get("/metrics")
    finally:
        receiver.stop()
    keys = Counter(key for key, _ in messages)
    assert set(keys) == matching, f"missing {matching - set(keys)}, extra {set(keys) - matching}"
    # The original line, byte for byte, keyed by its id.
    landed = {json.loads(line)["id"]: line for path in (tmp_path / "landing").rglob("*.jsonl")
              for line in path.read_bytes().splitlines()}
    assert all(landed[key] == value for key, value in messages)
    assert set(landed_ids(tmp_path / "landing")) == matching | others
    assert 'telemetry_ingest_forward_events_total{route="quotes-to-kafka"} 100' in metrics
    assert 'telemetry_ingest_forward_queue_files{route="quotes-to-kafka"} 0' in metrics
    assert 'telemetry_ingest_forward_failed_files{route="quotes-to-kafka"} 0' in metrics
    assert queued(tmp_path, "quotes-to-kafka") == []


def test_a_receiver_killed_mid_stream_loses_no_forwarded_event(broker: Broker,
                                                                tmp_path: Path) -> None:
    """SIGKILL while batches stream in; the Kafka route forwards as they come, the HTTP route's
    destination is down until after the restart, so its queue is full when the receiver dies."""
    broker.create_topic("killed", partitions=3)
    held_port = free_port()
    routes = write_routes(tmp_path, f"""
events:
  - name: to-kafka
    match: {{data.baseData.operationName: "GetQuote"}}
    kafka: {{bootstrap: "{broker.bootstrap}", topic: killed}}
  - name: to-http
    match: {{data.baseData.operationName: "GetQuote"}}
    http: {{url: "http://127.0.0.1:{held_port}/held"}}
""")
    receiver = routed_receiver(tmp_path, routes).start()
    acknowledged: set[str] = set()
    acked_batches = [0]
    done = threading.Event()

    def post_stream() -> None:
        for n in range(60):
            body, match, _ = batch(f"s{n}", 50)
            while True:
                try:
                    if receiver.post("/v1/events", body)[0] == 200:
                        break
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                time.sleep(0.05)  # the receiver is down: the client retries the same batch
            acknowledged.update(match)
            acked_batches[0] += 1
            time.sleep(0.01)
        done.set()

    sender = threading.Thread(target=post_stream, daemon=True)
    sender.start()
    destination = None
    try:
        wait_until(lambda: acked_batches[0] >= 20, 30, "batches before the kill")
        receiver.kill()
        killed_after = acked_batches[0]
        held_at_kill = len(queued(tmp_path, "to-http"))
        receiver.start()
        destination = Destination(lambda path, body, calls: 200, port=held_port)
        assert done.wait(60), "the stream did not finish"
        messages = topic_messages(broker, "killed", acknowledged, timeout=30)
        wait_until(lambda: set(destination.ids("/held")) >= acknowledged, 30,
                   "the held route to catch up")
        wait_until(lambda: not queued(tmp_path, "to-kafka") and not queued(tmp_path, "to-http"),
                   10, "the queues to empty")
    finally:
        receiver.stop()
        if destination is not None:
            destination.close()
    assert 20 <= killed_after < 60
    assert held_at_kill >= 20
    assert len(acknowledged) == 60 * 25
    keys = Counter(key for key, _ in messages)
    duplicates = sum(keys.values()) - len(keys)
    # Every acknowledged matching event at least once (a copy is allowed), nothing else.
    assert set(keys) == acknowledged, (
        f"{len(acknowledged - set(keys))} acknowledged events missing, "
        f"{len(set(keys) - acknowledged)} unexpected; {duplicates} duplicates")


def test_an_http_destination_gets_events_after_retries_and_poison_never_blocks(
        tmp_path: Path) -> None:
    def status(path: str, body: bytes, calls: int) -> int:
        if path == "/flaky":
            return 503 if calls < 2 else 200
        return 400 if b'"poison-' in body else 200

    destination = Destination(status)
    routes = write_routes(tmp_path, f"""
events:
  - name: flaky
    match: {{data.baseData.operationName: "Get*"}}
    http: {{url: "{destination.url}/flaky"}}
  - name: picky
    http: {{url: "{destination.url}/picky"}}
""")
    receiver = routed_receiver(tmp_path, routes).start()
    try:
        first, first_match, first_other = batch("first", 10)
        poison, poison_match, poison_other = batch("poison", 10)
        last, last_match, last_other = batch("last", 10)
        for body in (first, poison, last):
            assert receiver.post("/v1/events", body)[0] == 200
        wait_until(lambda: set(destination.ids("/flaky"))
                   >= first_match | poison_match | last_match, 20, "the flaky destination")
        wait_until(lambda: set(destination.ids("/picky"))
                   >= first_match | first_other | last_match | last_other, 20, "picky")
        wait_until(lambda: receiver.metric("telemetry_ingest_forward_queue_files") == 0, 10,
                   "the queues to empty")
        _, metrics = receiver.get("/metrics")
    finally:
        receiver.stop()
        destination.close()
    flaky = [p for p in destination.posts if p["path"] == "/flaky"]
    assert [p["status"] for p in flaky] == [503, 503, 200, 200, 200]
    # The retries are the same file: the same key; only a batch's matching events are sent.
    assert flaky[0]["key"] == flaky[1]["key"] == flaky[2]["key"]
    assert len({p["key"] for p in flaky}) == 3
    assert sorted(set(p["ids"]) for p in flaky[2:]) == sorted(
        [first_match, poison_match, last_match])
    assert flaky[0]["type"] == "application/x-ndjson"
    picky = [p for p in destination.posts if p["path"] == "/picky"]
    assert sorted(p["status"] for p in picky) == [200, 200, 400]
    refused = next(p for p in picky if p["status"] == 400)
    assert set(refused["ids"]) == poison_match | poison_other
    failed = sorted(route_dir(tmp_path, "picky", "failed").iterdir())
    assert [p.name for p in failed] == [refused["key"], refused["key"] + ".reason"]
    assert "HTTP 400" in failed[1].read_text()
    assert set(json.loads(line)["id"] for line in failed[0].read_bytes().splitlines()) \
        == poison_match | poison_other
    assert 'telemetry_ingest_forward_failed_files{route="picky"} 1' in metrics
    assert 'telemetry_ingest_forward_failed_files_total{route="picky"} 1' in metrics
    assert 'telemetry_ingest_forward_retries_total{route="flaky"} 2' in metrics


def test_the_kafka_consumer_forwards_matching_events(broker: Broker, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    broker.create_topic("raw-in", partitions=2)
    broker.create_topic("consumed-quotes", partitions=1)
    routes = write_routes(tmp_path, f"""
events:
  - name: consumed-quotes
    match: {{data.baseData.operationName: "GetQuote", ext.cloud.environment: prod}}
    kafka: {{bootstrap: "{broker.bootstrap}", topic: consumed-quotes}}
""")
    monkeypatch.setenv("TELEMETRY_ROUTES", str(routes))
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "data"))
    body, matching, others = batch("c", 200)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for line in body.splitlines():
        producer.produce("raw-in", value=line)
    assert producer.flush(30) == 0
    landing = tmp_path / "landing"
    consumer = ConsumerProcess(broker, landing, tmp_path / "consumer.log", "raw-in").start()
    try:
        messages = topic_messages(broker, "consumed-quotes", matching)
    finally:
        exit_code = consumer.stop()
    assert exit_code == 0
    assert {key for key, _ in messages} == matching
    assert set(landed_ids(landing)) == matching | others
    assert queued(tmp_path, "consumed-quotes") == []
    assert "forwarded to consumed-quotes" in (tmp_path / "consumer.log").read_text()


@pytest.mark.parametrize("command", ["serve", "consume"])
def test_a_bad_routes_file_stops_the_command_with_its_lines(tmp_path: Path, command: str) -> None:
    routes = write_routes(tmp_path, """events:
  - name: both
    kafka: {bootstrap: "127.0.0.1:9", topic: t}
    http: {url: "http://127.0.0.1:9/x"}
  - name: unknown-key
    hhtp: {url: "http://127.0.0.1:9/x"}
""")
    env = {**os.environ, "TELEMETRY_INGEST_TOKENS": "t", "TELEMETRY_ROUTES": str(routes),
           "TELEMETRY_DATA_DIR": str(tmp_path / "data")}
    arguments = ["--port", str(free_port())] if command == "serve" else ["--assign"]
    result = subprocess.run([sys.executable, "-m", "telemetry_ingest", command, *arguments],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{routes}:2: an event route needs exactly one of 'kafka' and 'http'" in result.stderr
    assert f"{routes}:6: unknown key 'hhtp'" in result.stderr
    assert "not starting" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_process_at_a_time_forwards_a_queue_and_another_takes_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers' forwarders on one queue (in one process here: the lock is per open file,
    as between processes); only the lock's holder sends, and the other takes over when it
    stops. A forward folder on another file system gets copies instead of hard links."""
    from datetime import datetime

    from telemetry_core.routes import EventRoute
    from telemetry_ingest.forward import Forwarding
    from telemetry_ingest.metrics import Metrics
    from telemetry_ingest.writer import LandingWriter

    destination = Destination(lambda path, body, calls: 200)
    route = EventRoute("shared", (), 1, http_url=f"{destination.url}/shared")
    writer = LandingWriter(tmp_path / "landing")
    first = Forwarding([route], tmp_path / "forward", Metrics())
    second = Forwarding([route], tmp_path / "forward", Metrics())
    hour = datetime(2026, 11, 20, 10)

    def land(prefix: str) -> set[str]:
        body, matching, others = batch(prefix, 4)
        files = writer.write_hours({hour: body.splitlines()}, "http")
        (first if prefix < "m" else second).enqueue(files)
        return matching | others

    try:
        first.start()
        wait_until(lambda: first.forwarders[0]._lock_fd is not None, 5, "the first to lock")
        second.start()
        sent = set().union(*(land(f"a{n}") for n in range(5)))
        wait_until(lambda: set(destination.ids("/shared")) == sent, 10, "the first's sends")
        assert second.forwarders[0]._lock_fd is None
        started = time.monotonic()
        first.stop()
        assert time.monotonic() - started < 2
        with monkeypatch.context() as patched:
            def no_link(*args: object) -> None:
                raise OSError(18, "Invalid cross-device link")

            patched.setattr(os, "link", no_link)
            sent |= set().union(*(land(f"z{n}") for n in range(3)))
        wait_until(lambda: set(destination.ids("/shared")) == sent, 10, "the second's sends")
    finally:
        first.stop()
        second.stop()
        destination.close()
    keys = [p["key"] for p in destination.posts]
    assert len(keys) == len(set(keys)) == 8, "a file was sent by both"
    assert not list((tmp_path / "forward" / "shared" / "queue").iterdir())
    # The copies' hidden temporary files are gone too.
    assert not [p for p in (tmp_path / "forward").rglob(".*.tmp")]
