"""What a receiver outage costs an instrumented service: request latency of the Flask example
service (examples/flask_service.py, WSGIMiddleware) with the receiver up, then stopped, then back.

The service runs in its own process, as it would in production; one caller sends requests one
at a time, so each latency is the service's own (plus loopback). Goal: with the receiver stopped,
p99 rises by at most 1 ms; the outage is one warning in the service's log; events recorded after
the receiver returns arrive.
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import REPO, free_port
from tests.telemetry_ingest.servers import TOKEN, Receiver, landed_lines, wait_for_port

REQUESTS = int(os.environ.get("BENCH_CLIENT_REQUESTS", "3000"))
WARMUP = 300
SERVE = (
    "import logging, sys, runpy\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "from werkzeug.serving import run_simple\n"
    "app = runpy.run_path('examples/flask_service.py')['create_app']()\n"
    "run_simple('127.0.0.1', int(sys.argv[1]), app, threaded=True)\n"
)


def latencies_ms(port: int, count: int, partner: str) -> list[float]:
    headers = {"baggage": f"ms.b.tel.partner={partner}"}
    taken = []
    for n in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        connection.request("GET", f"/quotes/sku-{n}", headers=headers)
        response = connection.getresponse()
        response.read()
        taken.append((time.perf_counter() - started) * 1000)
        connection.close()
        assert response.status == 200, response.status
    return taken


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def landed_partners(landing: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in landed_lines(landing):
        partner = json.loads(line)["data"]["cC"].rsplit("=", 1)[-1]
        counts[partner] = counts.get(partner, 0) + 1
    return counts


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-client-") as work:
        root = Path(work)
        receiver = Receiver(root / "landing", root / "receiver.log").start()
        port = free_port()
        env = {**os.environ, "TELEMETRY_CLIENT_ENDPOINT": receiver.url,
               "TELEMETRY_CLIENT_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
        log = (root / "service.log").open("w")
        service = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for_port(port, service)
            latencies_ms(port, WARMUP, "warmup")
            up = latencies_ms(port, REQUESTS, "up")
            receiver.stop()
            down = latencies_ms(port, REQUESTS, "down")
            receiver.start()
            back = latencies_ms(port, REQUESTS, "back")
            deadline = time.monotonic() + 60
            while landed_partners(root / "landing").get("back", 0) < REQUESTS:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            arrived = landed_partners(root / "landing")
        finally:
            service.terminate()
            service.wait(timeout=30)
            receiver.stop()
            log.close()
        warnings = [line for line in (root / "service.log").read_text().splitlines()
                    if "telemetry receiver" in line and "unavailable" in line]  # fmt: skip

    rise = p99(down) - p99(up)
    for name, values in (("receiver up", up), ("receiver stopped", down),
                         ("receiver back", back)):  # fmt: skip
        print(f"  {name:17} {len(values)} requests: median {statistics.median(values):.3f} ms, "
              f"p99 {p99(values):.3f} ms")
    print(f"  p99 with the receiver stopped: {rise:+.3f} ms against it up (goal: at most +1 ms) "
          f"-> {'met' if rise <= 1.0 else 'NOT met'}")
    print(f"  outage warnings in the service's log: {len(warnings)} (goal 1)")
    print(f"  events recorded after the receiver came back that arrived: "
          f"{arrived.get('back', 0)} of {REQUESTS}; while it was up: {arrived.get('up', 0)}; "
          f"while it was stopped (kept in the queue, sent on its return): "
          f"{arrived.get('down', 0)} of {REQUESTS}")


if __name__ == "__main__":
    main()
