"""The HTTP receiver as a process: what lands, and that bad input changes nothing."""

import gzip
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.events import as_lines, ndjson, wire_event
from tests.telemetry_ingest.servers import (
    TOKEN,
    Receiver,
    landed_files,
    landed_ids,
    landed_lines,
)


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def test_ndjson_lands_in_event_time_hour_folders_byte_for_byte(receiver: Receiver) -> None:
    events = [
        wire_event("a", "2026-11-20T10:15:03.120Z"),
        wire_event("b", "2026-11-20T10:59:59.999Z"),
        wire_event("c", "2026-11-20T11:00:00.000Z"),
        # An offset is converted: 23:30 at -02:00 is 01:30 UTC the next day.
        wire_event("d", "2026-11-20T23:30:00-02:00"),
    ]
    body = ndjson(*events)
    status, answer = receiver.post("/v1/events", body)
    assert (status, answer) == (200, {"accepted": 4, "rejected": []})

    files = landed_files(receiver.landing_dir)
    folders = sorted(str(f.parent.relative_to(receiver.landing_dir)) for f in files)
    assert folders == [
        "events/date=2026-11-20/hour=10",
        "events/date=2026-11-20/hour=11",
        "events/date=2026-11-21/hour=01",
    ]
    assert sorted(landed_lines(receiver.landing_dir)) == sorted(body.splitlines())
    assert not [p for p in everything_under(receiver.landing_dir) if p.name.endswith(".tmp")]


def test_json_array_and_gzip_are_accepted(receiver: Receiver) -> None:
    array = json.dumps([wire_event("arr-1"), wire_event("arr-2")]).encode()
    assert receiver.post("/v1/events", array)[0] == 200
    zipped = gzip.compress(ndjson(wire_event("gz-1"), wire_event("gz-2")))
    status, answer = receiver.post("/v1/events", zipped, Content_Encoding="gzip")
    assert (status, answer["accepted"]) == (200, 2)
    assert landed_ids(receiver.landing_dir) == {"arr-1": 1, "arr-2": 1, "gz-1": 1, "gz-2": 1}


def test_resent_batch_lands_once(receiver: Receiver) -> None:
    # A client that lost the acknowledgement sends the same batch again.
    body = ndjson(wire_event("r-1"), wire_event("r-2", "2026-11-20T12:00:00Z"))
    for _ in range(3):
        assert receiver.post("/v1/events", body) == (200, {"accepted": 2, "rejected": []})
    assert landed_ids(receiver.landing_dir) == {"r-1": 1, "r-2": 1}
    assert len(landed_files(receiver.landing_dir)) == 2


def test_partly_valid_batch_lands_the_valid_events_and_lists_each_rejected_one(
    receiver: Receiver,
) -> None:
    wrong_latency = wire_event("bad-latency")
    wrong_latency["data"]["baseData"]["latencyMs"] = "12"
    no_base_type = wire_event("no-base-type")
    del no_base_type["data"]["baseType"]
    body = b"\n".join(
        [
            json.dumps(wire_event("good-1")).encode(),
            b"{not json",
            b"",  # blank lines are skipped, not rejected
            json.dumps(wrong_latency).encode(),
            json.dumps(no_base_type).encode(),
            json.dumps({"time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"}}).encode(),
            json.dumps(wire_event("good-2")).encode(),
        ]
    )
    status, answer = receiver.post("/v1/events", body)
    assert status == 200
    assert answer["accepted"] == 2
    assert [r["line"] for r in answer["rejected"]] == [2, 4, 5, 6]
    reasons = [r["reason"] for r in answer["rejected"]]
    assert "JSON" in reasons[0]
    assert "latencyMs" in reasons[1]
    assert "baseType" in reasons[2]
    assert "id" in reasons[3]
    assert landed_ids(receiver.landing_dir) == {"good-1": 1, "good-2": 1}
    assert receiver.metric("telemetry_ingest_events_rejected_total") == 4
    assert receiver.metric("telemetry_ingest_events_accepted_total") == 2


WRONG_TYPE_ID = wire_event()
WRONG_TYPE_ID["id"] = 17
WRONG_STATUS = wire_event()
WRONG_STATUS["data"]["baseData"]["requestStatus"] = "3"
WRONG_CC = wire_event(cc=["ms.b.tel.scenario=x"])
NEGATIVE_LATENCY = wire_event()
NEGATIVE_LATENCY["data"]["baseData"]["latencyMs"] = -1
MISSING_TIME = wire_event()
del MISSING_TIME["time"]
BAD_TIME = wire_event(time="yesterday at noon")
MISSING_DATA = wire_event()
del MISSING_DATA["data"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'[{"id": "a", ', 400, "malformed JSON"),
        (b"{nope}\n", 400, "not valid JSON"),
        (b'"just a string"\n', 400, "JSON value is not an object"),
        (ndjson(WRONG_TYPE_ID), 400, "id must be a string"),
        (ndjson(WRONG_STATUS), 400, "requestStatus must be an integer"),
        (ndjson(WRONG_CC), 400, "data.cC must be a string"),
        (ndjson(NEGATIVE_LATENCY), 400, "latencyMs must not be negative"),
        (ndjson(MISSING_TIME), 400, "missing required field time"),
        (ndjson(BAD_TIME), 400, "ISO-8601"),
        (ndjson(MISSING_DATA), 400, "missing required field data.baseType"),
    ],
    ids=[
        "malformed-array", "malformed-line", "not-object", "id-type", "status-type", "cc-type",
        "negative-latency", "missing-time", "bad-time", "missing-data",
    ],
)  # fmt: skip
def test_bad_events_get_a_clear_answer_and_change_nothing(
    receiver: Receiver, body: bytes, status: int, needle: str
) -> None:
    got_status, answer = receiver.post("/v1/events", body)
    assert got_status == status
    assert needle in json.dumps(answer)
    assert everything_under(receiver.landing_dir) == []


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_missing_or_wrong_token_is_401_and_changes_nothing(
    receiver: Receiver, token: str | None
) -> None:
    status, answer = receiver.post("/v1/events", ndjson(wire_event()), token=token)
    assert status == 401
    assert "token" in answer["error"]
    assert everything_under(receiver.landing_dir) == []
    # Every configured token is accepted.
    assert receiver.post("/v1/events", ndjson(wire_event()), token="second-token")[0] == 200


def test_bad_gzip_is_400_and_changes_nothing(receiver: Receiver) -> None:
    truncated = gzip.compress(ndjson(wire_event(), wire_event("x")))[:-12]
    for body in (b"plainly not gzip", truncated):
        status, answer = receiver.post("/v1/events", body, Content_Encoding="gzip")
        assert status == 400
        assert "gzip" in answer["error"]
    assert everything_under(receiver.landing_dir) == []


def test_unsupported_encoding_is_415(receiver: Receiver) -> None:
    status, _ = receiver.post("/v1/events", ndjson(wire_event()), Content_Encoding="br")
    assert status == 415
    assert everything_under(receiver.landing_dir) == []


def test_oversize_bodies_are_413_and_change_nothing(small_receiver: Receiver) -> None:
    big = ndjson(*(wire_event(f"big-{i}") for i in range(100)))
    assert len(big) > 20_000
    status, answer = small_receiver.post("/v1/events", big)
    assert status == 413
    assert "20000" in answer["error"]
    # Small on the wire, too large once decompressed.
    bomb = gzip.compress(b"\n" * 1_000_000)
    assert len(bomb) < 20_000
    status, answer = small_receiver.post("/v1/events", bomb, Content_Encoding="gzip")
    assert status == 413
    assert "decompressed" in answer["error"]
    assert everything_under(small_receiver.landing_dir) == []
    assert small_receiver.post("/v1/events", ndjson(wire_event()))[0] == 200


def test_healthz_and_metrics(receiver: Receiver) -> None:
    assert receiver.get("/healthz") == (200, '{"status": "ok"}')
    receiver.post("/v1/events", ndjson(wire_event("m-1"), wire_event("m-2")))
    receiver.post("/v1/events", b"{", token="nope")
    status, text = receiver.get("/metrics")
    assert status == 200
    assert 'telemetry_ingest_requests_total{code="401",path="/v1/events"} 1' in text
    assert 'telemetry_ingest_events_accepted_total{source="http"} 2' in text
    assert "telemetry_ingest_landing_write_seconds_count 1" in text
    assert receiver.metric("telemetry_ingest_bytes_received_total") > 0


def test_settings_are_read_when_the_app_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telemetry_ingest.app import create_app

    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "root"))
    monkeypatch.delenv("TELEMETRY_LANDING_DIR", raising=False)
    monkeypatch.setenv("TELEMETRY_INGEST_TOKENS", " a, b ,")
    app = create_app()
    assert app.state.settings.landing_dir == tmp_path / "root" / "landing"
    assert app.state.settings.tokens == {"a", "b"}
    assert (tmp_path / "root" / "landing").is_dir()

    monkeypatch.setenv("TELEMETRY_LANDING_DIR", str(tmp_path / "elsewhere"))
    assert create_app().state.settings.landing_dir == tmp_path / "elsewhere"

    monkeypatch.delenv("TELEMETRY_INGEST_TOKENS")
    with pytest.raises(ValueError, match="TELEMETRY_INGEST_TOKENS"):
        create_app()


# Valid to the raw stage, but more nesting than Python's json module can follow.
DEEP_LINE = (b'{"id":"deep","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},"nested":'
             + b"[" * 5000 + b"]" * 5000 + b"}")


def test_a_batch_with_poison_lines_lands_every_good_line(receiver: Receiver) -> None:
    good = [wire_event(f"good-{n}") for n in range(999)]
    duplicate_time = (b'{"id":"dup","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},'
                      b'"time":null}')
    body = b"\n".join([*as_lines(*good), DEEP_LINE, duplicate_time, b"{nope"]) + b"\n"
    status, answer = receiver.post("/v1/events", body)
    assert status == 200
    # Judged as the pipeline will judge them: extra fields are ignored, the first `time` counts.
    assert answer["accepted"] == 1001
    assert answer["rejected"] == [{"line": 1002, "reason": "not valid JSON"}]
    landed = landed_lines(receiver.landing_dir)
    assert len(landed) == 1001 and DEEP_LINE in landed


def test_events_no_partition_reads_are_refused_not_acknowledged(receiver: Receiver) -> None:
    body = ndjson(wire_event("epoch", "1970-01-01T00:00:00Z"),
                  wire_event("far-future", "2999-01-01T00:00:00Z"), wire_event("ok"))
    status, answer = receiver.post("/v1/events", body)
    assert status == 200 and answer["accepted"] == 1
    reasons = {r["line"]: r["reason"] for r in answer["rejected"]}
    assert "before 2026-01-01" in reasons[1] and "in the future" in reasons[2]
    assert set(landed_ids(receiver.landing_dir)) == {"ok"}


def test_a_json_array_too_deep_to_split_is_a_400(receiver: Receiver) -> None:
    status, answer = receiver.post("/v1/events", b"[" + DEEP_LINE + b"]")
    assert status == 400 and "nested too deeply" in answer["error"]


def stalled_post(receiver: Receiver, declared: int, sent: bytes) -> socket.socket:
    """A POST whose body stops after `sent` bytes of the `declared` ones."""
    connection = socket.create_connection(("127.0.0.1", receiver.port), timeout=30)
    connection.sendall(
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return connection


def status_of(connection: socket.socket) -> tuple[int, str]:
    head = connection.recv(65536).decode("latin-1")
    return int(head.split(" ", 2)[1]), head


def test_bodies_in_flight_are_bounded_and_the_sender_told_when_to_retry(tmp_path, landing):
    receiver = Receiver(landing, tmp_path / "receiver.log", TELEMETRY_INGEST_MAX_BODY_BYTES="60000",
                        TELEMETRY_INGEST_MAX_INFLIGHT_BYTES="100000").start()
    try:
        held = stalled_post(receiver, 60_000, b'{"id":')  # reserves 60 kB, sends 6 bytes
        time.sleep(0.5)
        body = ndjson(*(wire_event(f"big-{n}") for n in range(140)))
        assert 40_000 < len(body) <= 60_000
        request = urllib.request.Request(receiver.url + "/v1/events", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        held.close()
        time.sleep(0.5)
        assert receiver.post("/v1/events", body)[0] == 200  # the budget is given back
    finally:
        receiver.stop()


def test_a_stalled_body_is_timed_out(tmp_path, landing):
    receiver = Receiver(landing, tmp_path / "receiver.log",
                        TELEMETRY_INGEST_BODY_TIMEOUT_SECONDS="1").start()
    try:
        connection = stalled_post(receiver, 1_000, b'{"id":"slow"')
        started = time.monotonic()
        status, _ = status_of(connection)
        assert status == 408 and time.monotonic() - started < 10
        connection.close()
        assert receiver.post("/v1/events", ndjson(wire_event("after")))[0] == 200
    finally:
        receiver.stop()


def test_a_client_that_trickles_its_headers_is_cut_off(tmp_path, landing):
    receiver = Receiver(landing, tmp_path / "receiver.log",
                        TELEMETRY_INGEST_HEADER_TIMEOUT_SECONDS="1").start()
    try:
        # Slowloris: a byte of the headers every 0.2 s, for ever.
        trickled = socket.create_connection(("127.0.0.1", receiver.port), timeout=30)
        silent = socket.create_connection(("127.0.0.1", receiver.port), timeout=30)
        started = time.monotonic()
        closed_after = None
        for byte in b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200:
            try:
                trickled.sendall(bytes([byte]))
            except OSError:  # reset: the server closed it
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)
        assert closed_after is not None and closed_after < 10
        assert silent.recv(1) == b""  # a connection that never sent a byte is closed too
        trickled.close()
        silent.close()

        # A kept-alive connection may send one request after another, each in time.
        kept = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
        for n in range(3):
            kept.request("POST", "/v1/events", body=ndjson(wire_event(f"kept-{n}")),
                         headers={"Authorization": f"Bearer {TOKEN}"})
            answer = kept.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
            time.sleep(0.6)  # under the deadline between requests
        kept.close()
        assert receiver.post("/v1/events", ndjson(wire_event("after")))[0] == 200
    finally:
        receiver.stop()


def test_no_api_document_is_served(receiver: Receiver) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert receiver.get(path)[0] == 404
