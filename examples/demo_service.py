"""A toy quote service instrumented with telemetry_client, and a driver that calls it.

Start the receiver, then the demo:

    TELEMETRY_INGEST_TOKENS=demo-token telemetry serve --port 8080 &
    python examples/demo_service.py --endpoint http://127.0.0.1:8080 --token demo-token

Each request the service handles becomes one event in the landing folder, under the
scenario of its route and the partner named in the caller's `X-Partner` header.
"""

import argparse
import json
import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from telemetry_client import TelemetryClient

PARTNERS = ["adatum", "adventure-works", "contoso", "fabrikam"]


def make_service(client: TelemetryClient) -> type[BaseHTTPRequestHandler]:
    class QuoteService(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle("checkout.purchase_quote", "GetQuote", self._quote)

        def do_POST(self) -> None:
            self._handle("checkout.place_order", "PostOrder", self._order)

        def _handle(self, scenario: str, operation: str, work) -> None:  # type: ignore[no-untyped-def]
            partner = self.headers.get("X-Partner", "")
            with (
                client.correlation(scenario=scenario, partner=partner),
                client.request(operation, request_type=self.command, caller="demo-driver") as r,
            ):
                status, body = work()
                r.http_status = status
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _quote(self) -> tuple[int, dict]:
            time.sleep(random.uniform(0.001, 0.01))
            if random.random() < 0.02:
                return 503, {"error": "pricing backend unavailable"}
            return 200, {"quote": round(random.uniform(10, 500), 2)}

        def _order(self) -> tuple[int, dict]:
            time.sleep(random.uniform(0.002, 0.02))
            if random.random() < 0.05:
                return 400, {"error": "quote expired"}
            return 201, {"order": random.randrange(10**6)}

        def log_message(self, *args: object) -> None:
            pass

    return QuoteService


def drive(url: str, requests: int) -> None:
    for n in range(requests):
        method = "POST" if n % 4 == 0 else "GET"
        request = urllib.request.Request(
            url, method=method, data=b"{}" if method == "POST" else None,
            headers={"X-Partner": random.choice(PARTNERS)},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as error:
            error.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:8080", help="telemetry receiver")
    parser.add_argument("--token", default="demo-token")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--environment", default="prod")
    args = parser.parse_args()

    client = TelemetryClient(
        args.endpoint, args.token, environment=args.environment, role="quote-service"
    )
    service = ThreadingHTTPServer(("127.0.0.1", 0), make_service(client))
    threading.Thread(target=service.serve_forever, daemon=True).start()
    drive(f"http://127.0.0.1:{service.server_address[1]}/quotes", args.requests)
    service.shutdown()

    # Closing here bounds the wait for a receiver that is down (the client has already logged
    # it once), instead of a second wait at exit.
    delivered = client.close(timeout=5)
    stats = client.stats()
    print(
        f"{args.requests} requests handled; telemetry: {stats.accepted} events accepted, "
        f"{stats.rejected} rejected, {stats.dropped} dropped, {stats.failed} failed"
        + ("" if delivered else " (not all delivered: is the receiver running?)")
    )


if __name__ == "__main__":
    main()
