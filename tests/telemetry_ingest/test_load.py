"""Acceptance 1: 200k events from 8 client processes; the receiver is SIGKILLed mid-load."""

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.telemetry_ingest.servers import REPO, TOKEN, Receiver, landed_ids

CLIENTS = 8
PER_CLIENT = 25_000


def test_every_accepted_event_lands_exactly_once_across_a_receiver_kill(
    tmp_path: Path, landing: Path
) -> None:
    receiver = Receiver(landing, tmp_path / "receiver.log").start()
    started = time.monotonic()
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.telemetry_ingest.load_client",
                receiver.url,
                TOKEN,
                f"c{k}",
                str(PER_CLIENT),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for k in range(CLIENTS)
    ]
    try:
        # Kill once a good share has landed, while the clients are still sending.
        deadline = time.monotonic() + 60
        while receiver.metric("telemetry_ingest_events_accepted_total") < 40_000:
            assert time.monotonic() < deadline, "receiver accepted too little before the kill"
            time.sleep(0.05)
        receiver.kill()
        killed_at = len(landed_ids(landing))
        time.sleep(0.5)
        receiver.start()
        outputs = [json.loads(c.communicate(timeout=170)[0]) for c in clients]
        elapsed = time.monotonic() - started
    finally:
        for c in clients:
            c.kill()
        receiver.stop()

    total = CLIENTS * PER_CLIENT
    assert killed_at < total, "the kill came after everything had landed"
    for stats in outputs:
        assert stats["drained"]
        assert (stats["accepted"], stats["dropped"], stats["failed"]) == (PER_CLIENT, 0, 0)
    assert sum(s["retries"] for s in outputs) >= 1

    ids = landed_ids(landing)
    assert len(ids) == total
    assert set(ids) == {f"c{k}-{n}" for k in range(CLIENTS) for n in range(PER_CLIENT)}
    assert max(ids.values()) == 1
    print(
        f"\n{total} events from {CLIENTS} clients in {elapsed:.1f} s including a SIGKILL and "
        f"restart: {total / elapsed:,.0f} events/s"
    )
