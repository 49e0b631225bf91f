"""One load-test client process:
`python -m tests.telemetry_ingest.load_client URL TOKEN NAME COUNT`.

Records COUNT events with ids `NAME-<n>` spread over three event-time hours, waits until all
are delivered, and prints the client's counters as JSON.
"""

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from telemetry_client import TelemetryClient, correlation

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def main() -> None:
    url, token, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = TelemetryClient(
        url, token, batch_size=1000, max_queue=count, retry_deadline=120, role_instance=name
    )
    step = timedelta(hours=3) / count
    with correlation(scenario="purchase-quote", partner=name):
        for n in range(count):
            client.record(
                "GetQuote",
                latency_ms=n % 500,
                request_status=3 if n % 50 else 6,
                time=START + n * step,
                request_type="POST",
                event_id=f"{name}-{n}",
            )
    drained = client.flush(timeout=150)
    print(json.dumps({"drained": drained, **asdict(client.stats())}), flush=True)


if __name__ == "__main__":
    main()
