"""The JavaScript client's own suite (clients/js, Node's test runner) against the real receiver,
and its events published by the pipeline next to the Python client's."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from telemetry_client import TelemetryClient
from tests.helpers import REPO
from tests.platform import Platform
from tests.telemetry_client.services import replay_clock
from tests.telemetry_ingest.servers import TOKEN, Receiver

JS = REPO / "clients" / "js"
TIMEOUT_S = 300


def _dependencies_stale() -> bool:
    # npm rewrites node_modules/.package-lock.json on every install: older than the committed
    # lock means the lock changed since.
    installed = JS / "node_modules" / ".package-lock.json"
    lock = JS / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=JS, capture_output=True, text=True, timeout=TIMEOUT_S,
                          **kwargs)


def test_js_client_suite() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm must be on PATH to test clients/js"
    if _dependencies_stale():
        installed = _run([npm, "ci", "--no-audit", "--no-fund"])
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    env = {**os.environ, "TELEMETRY_BIN": str(Path(sys.executable).parent / "telemetry")}
    # No path argument: Node 21+ reads one as a glob, and its default discovery finds test/.
    result = _run([node, "--test"], env=env)
    assert result.returncode == 0, (
        f"node --test exited {result.returncode}\n--- stdout ---\n{result.stdout[-30000:]}"
        f"\n--- stderr ---\n{result.stderr[-10000:]}"
    )


def test_js_and_python_events_are_published_side_by_side(platform: Platform,
                                                          tmp_path: Path) -> None:
    receiver = Receiver(platform.settings.landing_dir, tmp_path / "receiver.log").start()
    try:
        sent = _run(["node", "examples/send.mjs", "--endpoint", receiver.url, "--token", TOKEN,
                     "--scenario", "checkout.quote", "--partner", "fabrikam", "--count", "200",
                     "--fail-every", "10", "--start", "2026-11-20T10:00:00.000Z"])  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        client = TelemetryClient(receiver.url, TOKEN, clock=replay_clock(
            datetime(2026, 11, 20, 10, 5, tzinfo=UTC)))  # fmt: skip
        for n in range(300):
            client.record("GetQuote", latency_ms=5 + n % 20, request_status=6 if n % 10 == 0
                          else 3, scenario="checkout.quote", partner="contoso")  # fmt: skip
        assert client.flush(timeout=30)
        client.close()
    finally:
        receiver.stop()
    platform.run_whole_day("2026-11-20")

    published = platform.query(
        "select partner_id, total_requests, failed_requests, avg_latency_ms "
        "from published.scenario_partner_daily where scenario_id = 'checkout.quote' "
        "order by partner_id")  # fmt: skip
    # Both write latencies 5..24 ms in turn: 14.5 ms on average over whole cycles of 20.
    assert published == [
        {"partner_id": "contoso", "total_requests": 300, "failed_requests": 30,
         "avg_latency_ms": 14.5},
        {"partner_id": "fabrikam", "total_requests": 200, "failed_requests": 20,
         "avg_latency_ms": 14.5},
    ]  # fmt: skip
