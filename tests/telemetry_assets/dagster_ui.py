"""A real `dagster dev` on a free loopback port, and its GraphQL API, for the UI tests."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import REPO, free_port


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def venv_env(**extra: str) -> dict[str, str]:
    """The environment of a shell with the project's venv activated, as `make` runs `dg`."""
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "VIRTUAL_ENV": str(bin_dir.parent),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


@contextmanager
def serving_ui(command: list[str], tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The Dagster UI started by `command` (plus host and port) with the committed instance
    settings, until every asset is served; yields (port, log path)."""
    port = free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    log = tmp_path / "ui.log"
    env = venv_env(DAGSTER_HOME=str(home), TELEMETRY_DATA_DIR=str(tmp_path / "data"),
                   PYTHONWARNINGS="default")
    with open(log, "w") as output:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = graphql(port, "{ assetNodes { id } }")
                if data["assetNodes"]:
                    break
            except (OSError, KeyError, TypeError):
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{command} did not serve the assets in 120 s"
            time.sleep(1)
        yield port, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A daemon tick in progress on a loaded machine can outlast a graceful stop; what is
            # tested is serving the UI, and the process group must not outlive the test.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
