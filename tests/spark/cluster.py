"""A Spark standalone cluster on loopback: a master and two workers, each its own JVM, started
from the installed pyspark package's own launcher (its wheel has bin/spark-class, not sbin/)."""

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pyspark

from tests.helpers import free_port
from tests.telemetry_ingest.servers import wait_for_port

SPARK_HOME = Path(pyspark.__file__).parent


class SparkCluster:
    def __init__(self, workdir: Path, workers: int = 2) -> None:
        self.workdir = workdir
        self.port, self.ui_port = free_port(), free_port()
        self.worker_count = workers
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.worker_ui_ports: list[int] = []

    def _start(self, *arguments: str, name: str) -> subprocess.Popen:
        env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_WORKER_DIR": str(self.workdir / f"{name}-work"),
               "SPARK_LOG_DIR": str(self.workdir)}
        with open(self.workdir / f"{name}.log", "ab") as log:
            process = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *arguments],
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start(self) -> "SparkCluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        master = self._start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                             "--port", str(self.port), "--webui-port", str(self.ui_port),
                             name="master")
        wait_for_port(self.port, master, timeout=60)
        for index in range(self.worker_count):
            self.worker_ui_ports.append(free_port())
            self.workers.append(self._start(
                "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
                "--cores", "1", "--memory", "1g",
                "--webui-port", str(self.worker_ui_ports[-1]), name=f"worker-{index}"))
        deadline = time.monotonic() + 60
        while len(self.alive_workers()) < self.worker_count:
            assert time.monotonic() < deadline, "the workers did not register with the master"
            time.sleep(0.5)
        return self

    def status(self, ui_port: int | None = None) -> dict:
        """The master's JSON status, or a worker's (by its UI port)."""
        url = f"http://127.0.0.1:{ui_port or self.ui_port}/json/"
        for attempt in range(10):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return json.loads(response.read())
            except ValueError:
                # A page served while the UI is still starting is not JSON yet.
                if attempt == 9:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def executors_per_worker(self) -> list[int]:
        """How many executors (running or finished) each worker has hosted."""
        counts = []
        for port in self.worker_ui_ports:
            worker = self.status(port)
            counts.append(len(worker.get("executors", [])) + len(
                worker.get("finishedexecutors", [])))
        return counts

    def alive_workers(self) -> list[dict]:
        try:
            return [w for w in self.status()["workers"] if w["state"] == "ALIVE"]
        except (OSError, ValueError):
            return []

    def kill_worker(self, index: int) -> list[int]:
        """SIGKILL a worker and the executor JVMs it launched, as a machine lost at once; the
        pids killed."""
        return _kill_with_descendants(self.workers[index])

    def kill_all(self) -> list[int]:
        """SIGKILL the master, the workers and their executors: the whole cluster lost."""
        return [pid for process in self.processes for pid in _kill_with_descendants(process)]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _kill_with_descendants(process: subprocess.Popen) -> list[int]:
    doomed = [process.pid, *_descendants(process.pid)]
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=20)
    return doomed


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (each line of a stat file names its parent)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces: split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found
