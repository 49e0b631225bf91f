"""The JavaScript client's own suite (clients/js, Node's test runner) against the real receiver."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

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
