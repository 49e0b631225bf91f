"""The example web services (examples/flask_service.py, examples/fastapi_service.py) served for
real on loopback in this process, and a driver that calls them from several threads."""

import importlib.util
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import ModuleType

from werkzeug.serving import make_server

from telemetry_client import TelemetryClient
from tests.helpers import REPO


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay_clock(start: datetime):  # type: ignore[no-untyped-def]
    """A wall clock that starts at `start` and runs at real speed: the pipeline can then
    process the hour at once instead of waiting for today's to close."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


@contextmanager
def serve_wsgi(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def call(url: str, method: str = "GET", partner: str | None = None) -> int:
    headers = {"baggage": f"ms.b.tel.partner={partner}"} if partner else {}
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=b"" if method == "POST" else None)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def hammer(base: str, senders: int, requests: int) -> list[tuple[str, str, int]]:
    """`senders` threads, each `requests` calls: quotes, every 10th failing, and every 5th an
    order, every 25th failing; even senders are contoso, odd ones fabrikam. Returns (scenario,
    partner, HTTP status) per call."""
    answers: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def send(sender: int) -> None:
        partner = ("contoso", "fabrikam")[sender % 2]
        for n in range(requests):
            if n % 5 == 0:
                fail = "?fail=1" if n % 25 == 0 else ""
                result = ("checkout.place_order", partner,
                          call(f"{base}/orders{fail}", "POST", partner))  # fmt: skip
            else:
                fail = "?fail=1" if n % 10 == 1 else ""
                result = ("checkout.purchase_quote", partner,
                          call(f"{base}/quotes/sku-{n}{fail}", partner=partner))  # fmt: skip
            with lock:
                answers.append(result)

    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def client_for(url: str, token: str, role: str, clock=None, **options) -> TelemetryClient:  # type: ignore[no-untyped-def]
    extra = {"clock": clock} if clock else {}
    return TelemetryClient(url, token, environment="prod", role=role, role_instance=f"{role}-1",
                           flush_interval=0.1, **extra, **options)  # fmt: skip
