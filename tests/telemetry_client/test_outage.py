"""A receiver outage, as a service owner sees it: recording stays non-blocking, the outage is one
warning (not one per event or batch), losses are counted, events recorded after it arrive, and
exit waits no longer than it was told."""

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from telemetry_client import TelemetryClient
from tests.helpers import REPO, free_port
from tests.telemetry_ingest.servers import TOKEN, Receiver, landed_lines


def wait_until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_an_outage_is_one_warning_and_later_events_arrive(
    tmp_path: Path, landing: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telemetry_client")
    receiver = Receiver(landing, tmp_path / "receiver.log")
    client = TelemetryClient(receiver.url, TOKEN, batch_size=20, flush_interval=0.02,
                             max_queue=300)  # fmt: skip
    try:
        started = time.perf_counter()
        kept = [client.record("Op", latency_ms=1, request_status=3, event_id=f"during-{n}")
                for n in range(1000)]  # fmt: skip
        assert time.perf_counter() - started < 2.0  # bounded enqueue, no waiting on the network
        wait_until(lambda: client.stats().retries >= 5)
        stats = client.stats()
        # The newest events are kept: the oldest made room for them.
        assert kept.count(True) == stats.enqueued == 1000
        assert stats.dropped >= 1000 - 300 - 20
        assert stats.lost == stats.dropped

        receiver.start()
        after = [f"after-{n}" for n in range(50)]
        for event_id in after:
            assert client.record("Op", latency_ms=1, request_status=3, event_id=event_id)
        assert client.flush(timeout=30)
        stats = client.stats()
        assert (stats.accepted, stats.failed) == (stats.enqueued - stats.dropped, 0)
        ids = [json.loads(line)["id"] for line in landed_lines(landing)]
        assert len(ids) == len(set(ids)) == stats.accepted == 1050 - stats.dropped
        assert set(after) | {f"during-{n}" for n in range(1000 - 250, 1000)} <= set(ids)
    finally:
        client.close(timeout=5)
        receiver.stop()

    records = [r for r in caplog.records if r.name == "telemetry_client"]
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "unavailable" in warnings[0] and receiver.url in warnings[0]
    (back,) = [r.getMessage() for r in records if "answers again after" in r.getMessage()]
    assert f"{stats.dropped} events were lost meanwhile" in back


def test_exit_with_the_receiver_down_is_bounded_and_says_why() -> None:
    script = (
        "from telemetry_client import TelemetryClient\n"
        "client = TelemetryClient()\n"
        "for n in range(10):\n"
        "    client.record('Op', latency_ms=1, request_status=3)\n"
    )
    env = {**os.environ, "TELEMETRY_CLIENT_ENDPOINT": f"http://127.0.0.1:{free_port()}",
           "TELEMETRY_CLIENT_TOKEN": TOKEN, "TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT": "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # The exit flush was told 1 s; interpreter start and teardown take the rest.
    assert elapsed < 8, elapsed
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert "unavailable" in lines[0]
    assert "10 events still queued" in lines[1] and "are lost" in lines[1]


class ForgetfulServer:
    """Keeps no connection alive, though its HTTP/1.1 answers do not say so: what a client sees
    of a server that closes idle kept-alive connections (uvicorn after 5 s)."""

    def __init__(self) -> None:
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                lines = gzip.decompress(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts += 1
                answer = json.dumps({"accepted": lines.count(b"\n") + 1, "rejected": []})
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_connection_the_server_closed_is_not_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    server = ForgetfulServer()
    client = TelemetryClient(server.url, TOKEN, batch_size=10, flush_interval=0.02)
    try:
        for batch in range(3):
            for n in range(10):
                client.record("Op", latency_ms=1, request_status=3, event_id=f"{batch}-{n}")
            assert client.flush(timeout=10)
        stats = client.stats()
        assert (stats.accepted, stats.retries, stats.failed) == (30, 0, 0)
        assert server.posts == 3
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        client.close()
        server.server.shutdown()
