"""Receiver throughput: pre-built gzip'd NDJSON batches posted by concurrent senders.

The batches are encoded before the clock starts, so the figure is the receiver's own
(decode, validate, route, fsync'd write), with senders on the same machine competing for CPU.
"""

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.events import wire_event

SENDERS = 8
# Receiver processes (`telemetry-ingest serve --workers`); each is a uvicorn worker.
WORKERS = int(os.environ.get("BENCH_RECEIVER_WORKERS", "2"))
BATCHES = 200
BATCH_SIZE = 1000
TOKEN = "bench-token"


def _batches() -> list[bytes]:
    template = wire_event()
    batches = []
    for b in range(BATCHES):
        lines = []
        for n in range(BATCH_SIZE):
            template["id"] = f"bench-{b}-{n}"
            template["time"] = f"2026-11-20T{n % 3 + 9:02d}:{n % 60:02d}:00.000Z"
            lines.append(json.dumps(template))
        batches.append(gzip.compress("\n".join(lines).encode(), compresslevel=5))
    return batches


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("receiver did not start")


def _send(port: int, batches: list[bytes], failures: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Encoding": "gzip"}
    for body in batches:
        connection.request("POST", "/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            failures.append(f"HTTP {response.status}: {answer[:200]!r}")
    connection.close()


def main() -> None:
    batches = _batches()
    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "TELEMETRY_INGEST_TOKENS": TOKEN}
        command = [sys.executable, "-m", "telemetry_ingest", "serve", "--port", str(port),
                   "--landing-dir", str(Path(scratch) / "landing"),
                   "--workers", str(WORKERS)]  # fmt: skip
        receiver = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            _wait_until_listening(port, receiver)
            failures: list[str] = []
            senders = [
                threading.Thread(target=_send, args=(port, batches[i::SENDERS], failures))
                for i in range(SENDERS)
            ]
            started = time.perf_counter()
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            elapsed = time.perf_counter() - started
        finally:
            receiver.terminate()
            receiver.wait(timeout=10)
    events = BATCHES * BATCH_SIZE
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, first: {failures[0]}")
    print(
        f"receiver ({WORKERS} worker process{'es' if WORKERS > 1 else ''}): {events} events in "
        f"{BATCHES} gzip'd NDJSON batches from {SENDERS} senders, each batch fsynced before "
        f"its answer: {elapsed:.2f} s, {events / elapsed:,.0f} events/s (goal: 100,000)"
    )


if __name__ == "__main__":
    main()
