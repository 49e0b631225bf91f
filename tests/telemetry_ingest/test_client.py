"""telemetry_client against the real receiver (and a scripted server for 5xx answers)."""

import asyncio
import gzip
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from telemetry_client import STATUS_SERVICE_ERROR, TelemetryClient, correlation
from tests.telemetry_ingest.servers import (
    REPO,
    TOKEN,
    Receiver,
    free_port,
    landed_files,
    landed_lines,
)

FIXED_TIME = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def landed_events(landing: Path) -> dict[str, dict]:
    return {e["id"]: e for e in map(json.loads, landed_lines(landing))}


def test_request_scope_and_decorator_emit_spec_events(receiver: Receiver) -> None:
    client = TelemetryClient(
        receiver.url, TOKEN, environment="prod", role="quote-svc", role_instance="vm-7"
    )

    @client.track("Decorated", request_type="GET")
    def handler(fail: bool) -> str:
        if fail:
            raise KeyError("boom")
        return "ok"

    @client.track()
    async def async_handler() -> int:
        return 1

    with correlation(scenario="purchase-quote", partner="contoso"):
        with client.request("GetQuote", request_type="POST", caller="web", event_id="ok") as r:
            r.http_status = 201
        with client.request("GetQuote", event_id="caller-error") as r:
            r.http_status = 404
        with pytest.raises(ZeroDivisionError), client.request("GetQuote", event_id="raised"):
            1 / 0  # noqa: B018
        # The innermost block wins for what it sets and inherits the rest.
        with correlation(partner="fabrikam"), client.request("Inner", event_id="inner"):
            pass
        assert handler(False) == "ok"
        with pytest.raises(KeyError):
            handler(True)
        assert asyncio.run(async_handler()) == 1
    with client.request("NoContext", event_id="no-context") as r:
        r.status = 7
    assert client.flush(timeout=20)
    stats = client.stats()
    assert (stats.enqueued, stats.accepted, stats.dropped, stats.failed) == (8, 8, 0, 0)

    events = landed_events(receiver.landing_dir)
    assert len(events) == 8
    ok = events["ok"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ok["time"])
    assert ok["data"]["baseType"] == "Ms.Qos.IncomingServiceRequest"
    assert ok["data"]["cC"] == "ms.b.tel.scenario=purchase-quote;ms.b.tel.partner=contoso"
    base = ok["data"]["baseData"]
    assert (base["operationName"], base["requestType"], base["callerName"]) == (
        "GetQuote", "POST", "web",
    )  # fmt: skip
    assert base["requestStatus"] == 3
    assert 0 <= base["latencyMs"] < 5_000
    assert ok["ext"] == {
        "cloud": {"environment": "prod", "role": "quote-svc", "roleInstance": "vm-7"},
        "sll": {"libVer": "5.0.0"},
    }
    assert events["caller-error"]["data"]["baseData"]["requestStatus"] == 4
    assert events["raised"]["data"]["baseData"]["requestStatus"] == STATUS_SERVICE_ERROR
    assert events["inner"]["data"]["cC"] == (
        "ms.b.tel.scenario=purchase-quote;ms.b.tel.partner=fabrikam"
    )
    assert events["no-context"]["data"]["cC"] == ""
    assert events["no-context"]["data"]["baseData"]["requestStatus"] == 7
    decorated = sorted(
        e["data"]["baseData"]["requestStatus"]
        for e in events.values()
        if e["data"]["baseData"]["operationName"] == "Decorated"
    )
    assert decorated == [3, 6]
    assert any(
        e["data"]["baseData"]["operationName"].endswith("async_handler") for e in events.values()
    )
    client.close()


def test_events_are_sent_in_batches(receiver: Receiver) -> None:
    client = TelemetryClient(receiver.url, TOKEN, batch_size=100, flush_interval=30)
    for i in range(1000):
        client.record("Op", latency_ms=1.0, request_status=3, time=FIXED_TIME, event_id=f"b{i}")
    # Full batches go out without waiting for the 30 s flush interval.
    deadline = time.monotonic() + 20
    while client.stats().accepted < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = client.stats()
    assert (stats.accepted, stats.batches) == (1000, 10)
    assert len(landed_files(receiver.landing_dir)) == 10
    client.close()


def test_waits_for_a_receiver_that_is_not_up_yet(tmp_path: Path, landing: Path) -> None:
    server = Receiver(landing, tmp_path / "late.log")
    client = TelemetryClient(server.url, TOKEN, batch_size=50, flush_interval=0.05)
    for i in range(200):
        client.record("Op", latency_ms=1.0, request_status=3, event_id=f"late-{i}")
    time.sleep(0.5)
    assert client.stats().retries >= 1
    server.start()
    try:
        assert client.flush(timeout=30)
        stats = client.stats()
        assert (stats.accepted, stats.failed, stats.dropped) == (200, 0, 0)
        assert len(landed_events(landing)) == 200
    finally:
        client.close()
        server.stop()


class ScriptedServer:
    """Answers POSTs with scripted status codes, then 200; keeps every body it received."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(gzip.decompress(body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                events = outer.bodies[-1].count(b"\n") + 1
                answer = {"accepted": events, "rejected": []} if status == 200 else {"error": "no"}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    server = ScriptedServer(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("scripted", [[503, 500, 502]], indirect=True)
def test_5xx_answers_are_retried_with_the_same_batch(scripted: ScriptedServer) -> None:
    client = TelemetryClient(scripted.url, TOKEN, flush_interval=0.05)
    for i in range(20):
        client.record("Op", latency_ms=1.0, request_status=3, event_id=f"r{i}")
    assert client.flush(timeout=20)
    stats = client.stats()
    assert (stats.retries, stats.accepted, stats.failed) == (3, 20, 0)
    assert len(scripted.bodies) == 4
    assert len(set(scripted.bodies)) == 1
    client.close()


@pytest.mark.parametrize("scripted", [[400]], indirect=True)
def test_a_refused_batch_is_not_retried_and_counted_as_failed(scripted: ScriptedServer) -> None:
    client = TelemetryClient(scripted.url, TOKEN, flush_interval=0.05)
    for i in range(5):
        client.record("Op", latency_ms=1.0, request_status=3, event_id=f"f{i}")
    assert client.flush(timeout=20)
    stats = client.stats()
    assert (stats.retries, stats.accepted, stats.failed) == (0, 0, 5)
    assert len(scripted.bodies) == 1
    client.close()


def test_batches_over_the_size_limit_are_split(small_receiver: Receiver) -> None:
    client = TelemetryClient(small_receiver.url, TOKEN, batch_size=500, flush_interval=30)
    for i in range(500):
        client.record("Op", latency_ms=1.0, request_status=3, event_id=f"s{i}")
    assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.accepted, stats.failed) == (500, 0)
    assert len(landed_events(small_receiver.landing_dir)) == 500
    assert len(landed_files(small_receiver.landing_dir)) > 1
    client.close()


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    closed_port = free_port()
    client = TelemetryClient(
        f"http://127.0.0.1:{closed_port}", TOKEN, max_queue=10, batch_size=5, retry_deadline=60
    )
    started = time.perf_counter()
    kept = [client.record("Op", latency_ms=1, request_status=3) for _ in range(100)]
    assert time.perf_counter() - started < 1.0
    stats = client.stats()
    # Every event is queued; the oldest make room for the newest once the queue is full.
    assert kept.count(True) == stats.enqueued == 100
    assert stats.dropped >= 85
    assert stats.queued <= 15
    assert not client.flush(timeout=0.2)
    client.close(timeout=0.1)


def test_recording_never_raises_into_the_service() -> None:
    client = TelemetryClient(f"http://127.0.0.1:{free_port()}", TOKEN, retry_deadline=0.2)
    assert client.record("Op", latency_ms=1, request_status=3, scenario=object()) is False  # type: ignore[arg-type]
    with client.request("Op") as r:
        r.scenario = 42  # type: ignore[assignment]
    assert client.flush(timeout=5)
    stats = client.stats()
    assert (stats.enqueued, stats.dropped) == (0, 2)
    client.close()


def test_queued_events_are_flushed_at_exit(receiver: Receiver) -> None:
    script = (
        "from telemetry_client import TelemetryClient\n"
        f"c = TelemetryClient({receiver.url!r}, {TOKEN!r}, flush_interval=60)\n"
        "for i in range(50):\n"
        "    c.record('Op', latency_ms=1.0, request_status=3, event_id=f'exit-{i}')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    assert set(landed_events(receiver.landing_dir)) == {f"exit-{i}" for i in range(50)}
