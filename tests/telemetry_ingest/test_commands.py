"""`telemetry serve` and `telemetry consume` are part of the `telemetry` command."""

import os
import subprocess
import sys

from click.testing import CliRunner

from telemetry_cli.main import main
from tests.helpers import REPO, free_port


def test_serve_and_consume_have_help() -> None:
    runner = CliRunner()
    serve = runner.invoke(main, ["serve", "--help"])
    assert serve.exit_code == 0
    assert "TELEMETRY_INGEST_TOKENS" in serve.output
    consume = runner.invoke(main, ["consume", "--help"])
    assert consume.exit_code == 0
    assert "--topic" in consume.output and "logging_raw" in consume.output


def test_serve_refuses_to_start_without_tokens() -> None:
    # A process with a timeout: if the check were gone, the server would run forever.
    env = {**os.environ, "TELEMETRY_INGEST_TOKENS": " , "}
    command = [sys.executable, "-m", "telemetry_ingest", "serve", "--port", str(free_port())]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "TELEMETRY_INGEST_TOKENS" in result.stderr
