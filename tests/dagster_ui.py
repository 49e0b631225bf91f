"""A real `dagster dev` on a free loopback port, and its GraphQL API, for the UI tests."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    """`dagster dev -w workspace.yaml` with the committed instance settings; (port, log path).

    One per test module: starting it takes tens of seconds, and the tests only read from it.
    """
    tmp_path = tmp_path_factory.mktemp("dagster_dev")
    port = free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    log = tmp_path / "dagster-dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(home), "TELEMETRY_DATA_DIR": str(tmp_path / "data"),
           "PYTHONWARNINGS": "default"}
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "--host", "127.0.0.1", "--port",
             str(port)], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
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
            assert time.monotonic() < deadline, "dagster dev did not serve the assets in 120 s"
            time.sleep(1)
        yield port, log
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
