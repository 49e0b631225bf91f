"""`POST /v1/annotations` on a real receiver process: recorded once, refused with a reason."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from telemetry_core.annotations import MAX_TEXT_CHARS, AnnotationStore
from tests.helpers import write_reference
from tests.telemetry_ingest.servers import Receiver

DEPLOY = {"start": "2026-11-20T10:15:00Z", "kind": "deploy", "scope": "service:checkout",
          "text": "checkout v1.2 deployed", "link": "https://ci.example/builds/12"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_reference(tmp_path / "data" / "reference")
    return tmp_path / "data"


@pytest.fixture
def receiver(tmp_path: Path, data_dir: Path):
    server = Receiver(data_dir / "landing", tmp_path / "receiver.log",
                      TELEMETRY_DATA_DIR=str(data_dir)).start()
    yield server
    server.stop()


def stored(data_dir: Path) -> list:
    day = datetime(2026, 11, 20)
    return AnnotationStore(data_dir / "lake").between(day, day + timedelta(days=1))


def post(receiver: Receiver, document, token: str | None = "default") -> tuple[int, dict]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    if token == "default":
        return receiver.post("/v1/annotations", body, content_type="application/json")
    return receiver.post("/v1/annotations", body, token=token, content_type="application/json")


def test_an_annotation_is_recorded_and_a_batch_is_all_or_nothing(receiver, data_dir):
    status, answer = post(receiver, DEPLOY)
    assert status == 201, answer
    (recorded,) = stored(data_dir)
    assert answer == {"recorded": [recorded.annotation_id]}
    assert (recorded.kind, recorded.scope, recorded.scope_value, recorded.source) == (
        "deploy", "service", "checkout", "api")
    assert recorded.starts_at == datetime(2026, 11, 20, 10, 15) and recorded.link == DEPLOY["link"]

    good = {**DEPLOY, "text": "second"}
    status, answer = post(receiver, [good, {**DEPLOY, "scope": "team:sre"}, good])
    assert status == 400
    (rejected,) = answer["rejected"]
    assert (rejected["index"], rejected["field"]) == (1, "scope")
    assert "unknown scope 'team:sre'" in rejected["reason"]
    assert len(stored(data_dir)) == 1

    status, answer = post(receiver, [good, {**good, "text": "third"}])
    assert status == 201 and len(answer["recorded"]) == 2 and len(stored(data_dir)) == 3


@pytest.mark.parametrize(("document", "field", "said"), [
    ({**DEPLOY, "end": "2026-11-20T10:00:00Z"}, "end", "before it starts"),
    ({**DEPLOY, "scope": "region:eu"}, "scope", "unknown scope"),
    ({**DEPLOY, "scope": "scenario:no.such"}, "scope", "unknown scenario"),
    ({**DEPLOY, "text": "x" * (MAX_TEXT_CHARS + 1)}, "text", "characters; at most"),
])
def test_bad_input_gets_a_400_naming_the_field_and_records_nothing(receiver, data_dir,
                                                                    document, field, said):
    status, answer = post(receiver, document)
    assert status == 400, answer
    (rejected,) = answer["rejected"]
    assert rejected["field"] == field and said in rejected["reason"]
    assert stored(data_dir) == []


def test_no_token_no_json_and_no_object_are_refused(receiver, data_dir):
    assert post(receiver, DEPLOY, token=None)[0] == 401
    assert post(receiver, DEPLOY, token="stolen")[0] == 401
    status, answer = post(receiver, b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
    status, answer = post(receiver, [])
    assert status == 400 and "non-empty list" in answer["error"]
    status, answer = post(receiver, [DEPLOY] * 101)
    assert status == 400 and "at most 100" in answer["error"]
    assert stored(data_dir) == []
