"""`POST` and `GET /v1/silences` on a real receiver process: recorded, listed, refused with the
field at fault."""

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from telemetry_core.silences import SilenceStore
from tests.telemetry_ingest.servers import TOKEN, Receiver

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


WINDOW = {"match": {"scenario": "checkout.*", "partner": "contoso"},
          "starts_at": iso(NOW + timedelta(hours=1)), "ends_at": iso(NOW + timedelta(hours=3)),
          "reason": "db upgrade", "created_by": "deploy-bot"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def receiver(tmp_path: Path, data_dir: Path):
    server = Receiver(data_dir / "landing", tmp_path / "receiver.log",
                      TELEMETRY_DATA_DIR=str(data_dir),
                      TELEMETRY_INGEST_MAX_BODY_BYTES="20000").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory):
    """One receiver for all the bad inputs (none of which records anything): (it, data dir)."""
    tmp_path = tmp_path_factory.mktemp("refusing")
    server = Receiver(tmp_path / "data" / "landing", tmp_path / "receiver.log",
                      TELEMETRY_DATA_DIR=str(tmp_path / "data")).start()
    yield server, tmp_path / "data"
    server.stop()


def stored(data_dir: Path) -> list:
    return SilenceStore(data_dir / "lake").around(NOW - timedelta(days=1),
                                                  NOW + timedelta(days=40))


def post(receiver: Receiver, document, token: str | None = TOKEN) -> tuple[int, dict]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return receiver.post("/v1/silences", body, token=token, content_type="application/json")


def listed(receiver: Receiver, query: str = "", token: str | None = TOKEN) -> tuple[int, object]:
    request = urllib.request.Request(f"{receiver.url}/v1/silences{query}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_silence_is_recorded_answered_and_listed(receiver, data_dir):
    status, answer = post(receiver, WINDOW)
    assert status == 201, answer
    (recorded,) = stored(data_dir)
    assert answer["silence_id"] == recorded.silence_id
    assert (recorded.scenario, recorded.service, recorded.partner) == ("checkout.*", "*",
                                                                       "contoso")
    assert recorded.starts_at == NOW.replace(tzinfo=None) + timedelta(hours=1)
    assert recorded.ends_at == NOW.replace(tzinfo=None) + timedelta(hours=3)
    assert (recorded.reason, recorded.created_by) == ("db upgrade", "api:deploy-bot")
    assert (answer["starts_at"], answer["ends_at"]) == (WINDOW["starts_at"], WINDOW["ends_at"])

    # No start is now; an offset or no zone at all (UTC) parse; no created_by is "api".
    ends = (NOW + timedelta(hours=2)).replace(tzinfo=None).isoformat()
    status, now_on = post(receiver, {"match": {"service": "payments"}, "ends_at": ends})
    assert status == 201, now_on
    assert now_on["created_by"] == "api" and now_on["ends_at"] == iso(NOW + timedelta(hours=2))
    offset = (NOW + timedelta(hours=4)).astimezone(timezone(timedelta(hours=2))).isoformat()
    status, shifted = post(receiver, {**WINDOW, "ends_at": offset})
    assert status == 201 and shifted["ends_at"] == iso(NOW + timedelta(hours=4)), shifted

    status, everything = listed(receiver)
    assert status == 200
    assert {s["silence_id"] for s in everything} == {
        answer["silence_id"], now_on["silence_id"], shifted["silence_id"]}
    assert answer in everything
    status, active = listed(receiver, "?active=true")
    assert status == 200 and [s["silence_id"] for s in active] == [now_on["silence_id"]]
    assert listed(receiver, "?active=maybe") == (
        400, {"error": "active is true or false", "field": "active"})


def test_a_retried_post_records_a_second_identical_silence(receiver, data_dir):
    # No idempotency key: the copy mutes exactly what the first does (docs/mood-and-alerts.md).
    first, second = post(receiver, WINDOW)[1], post(receiver, WINDOW)[1]
    assert first["silence_id"] != second["silence_id"]
    assert {k: v for k, v in first.items() if k not in ("silence_id", "created_at")} == {
        k: v for k, v in second.items() if k not in ("silence_id", "created_at")}
    assert len(stored(data_dir)) == 2


@pytest.mark.parametrize(("document", "field", "said"), [
    ({**WINDOW, "match": {"scenario": "[x"}}, "match.scenario", "not a valid glob"),
    ({**WINDOW, "match": {"region": "eu"}}, "match", "unknown key 'region'"),
    ({**WINDOW, "match": {}}, "match", "at least one of"),
    ({**WINDOW, "match": "scenario=checkout.*"}, "match", "must be an object"),
    ({**WINDOW, "ends_at": iso(NOW + timedelta(days=32))}, "ends_at", "at most 30 days"),
    ({**WINDOW, "ends_at": iso(NOW)}, "ends_at", "is not after the start"),
    ({**WINDOW, "ends_at": "tomorrow"}, "ends_at", "is not an ISO-8601 time"),
    ({**WINDOW, "starts_at": "2026-13-01T00:00:00Z"}, "starts_at", "is not an ISO-8601 time"),
    ({k: v for k, v in WINDOW.items() if k != "ends_at"}, "ends_at", "must be an ISO-8601"),
    ({**WINDOW, "until": "2h"}, "until", "unknown key 'until'"),
    ({**WINDOW, "reason": 7}, "reason", "must be a string"),
    ({**WINDOW, "reason": "x" * 2001}, "reason", "at most 2000"),
    ({**WINDOW, "created_by": ["root"]}, "created_by", "must be a string"),
    (b"{not json", "body", "not JSON"),
    ([WINDOW], "body", "must be a silence object"),
])
def test_bad_input_gets_a_400_naming_the_field_and_records_nothing(refusing, document, field,
                                                                    said):
    receiver, data_dir = refusing
    status, answer = post(receiver, document)
    assert status == 400, answer
    assert answer["field"] == field and said in answer["error"], answer
    assert stored(data_dir) == []


def test_no_token_or_too_large_is_refused_and_requests_are_counted(receiver, data_dir):
    assert post(receiver, {**WINDOW, "reason": "x" * 30_000})[0] == 413
    assert post(receiver, WINDOW, token=None)[0] == 401
    assert post(receiver, WINDOW, token="stolen")[0] == 401
    assert listed(receiver, token=None)[0] == 401
    assert stored(data_dir) == []
    assert post(receiver, WINDOW)[0] == 201
    _, text = receiver.get("/metrics")
    assert 'telemetry_ingest_requests_total{code="401",path="/v1/silences"} 3' in text
    assert 'telemetry_ingest_requests_total{code="201",path="/v1/silences"} 1' in text
    assert 'telemetry_ingest_requests_total{code="413",path="/v1/silences"} 1' in text
