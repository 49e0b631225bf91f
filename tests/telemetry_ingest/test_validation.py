"""The receiver's validator on literal lines: the contract it shares with the raw stage."""

import json

import pytest

from telemetry_core.landing import classify_event_lines
from telemetry_ingest.writer import route_by_hour
from tests.events import wire_event


def with_base_data(**fields: object) -> bytes:
    made = wire_event()
    made["data"]["baseData"].update(fields)
    return json.dumps(made).encode()


CASES = [
    (json.dumps(wire_event()).encode(), None),
    (with_base_data(requestStatus=3.0, latencyMs=0), None),
    (with_base_data(requestStatus=None), None),
    (json.dumps(wire_event(cc=None, is_test="")).encode(), None),
    (json.dumps(wire_event(time="2026-11-20T10:15:03.123456789+01:00")).encode(), None),
    (json.dumps(wire_event(time="2026-11-20 10:15:03")).encode(), None),
    (b"\xff\xfe{}", "line is not valid UTF-8"),
    (b'{"id": ', "not valid JSON"),
    (b"[1, 2]", "JSON value is not an object"),
    (json.dumps({**wire_event(), "id": "  "}).encode(), "id is empty"),
    (json.dumps({**wire_event(), "id": 5}).encode(), "id must be a string"),
    (json.dumps({**wire_event(), "time": 1763633703}).encode(), "time must be a string"),
    (json.dumps(wire_event(time="20261120T101503")).encode(), "time is not an ISO-8601 timestamp"),
    (json.dumps(wire_event(time="")).encode(), "time is not an ISO-8601 timestamp"),
    (json.dumps({**wire_event(), "data": "x"}).encode(), "data must be an object"),
    (json.dumps({**wire_event(), "ext": "x"}).encode(), "ext must be an object"),
    (json.dumps(wire_event(base_type=None)).encode(), "missing required field data.baseType"),
    (json.dumps(wire_event(base_type=True)).encode(), "data.baseType must be a string"),
    (json.dumps(wire_event(sc_partner=7)).encode(), "data.scPartner must be a string"),
    (with_base_data(latencyMs="12"), "data.baseData.latencyMs must be a number"),
    (with_base_data(latencyMs=-0.5), "data.baseData.latencyMs must not be negative"),
    (with_base_data(requestStatus=True), "data.baseData.requestStatus must be an integer"),
    (with_base_data(requestStatus=3.5), "data.baseData.requestStatus must be an integer"),
    (with_base_data(requestStatus=2**31), "data.baseData.requestStatus must be an integer"),
]


@pytest.mark.parametrize(("line", "reason"), CASES)
def test_each_line_gets_the_raw_stage_reason(line: bytes, reason: str | None) -> None:
    assert classify_event_lines([line]) == [reason]


def test_one_call_classifies_a_whole_batch_in_order() -> None:
    lines = [line for line, _ in CASES]
    assert classify_event_lines(lines) == [reason for _, reason in CASES]


def test_valid_events_are_routed_to_their_utc_hour() -> None:
    lines = [
        json.dumps(wire_event("a", "2026-11-20T10:59:59.999Z")).encode(),
        json.dumps(wire_event("b", "2026-11-20T12:30:00+02:00")).encode(),
        json.dumps(wire_event("c", "2026-11-20T11:00:00")).encode(),
    ]
    routed = route_by_hour(lines)
    assert routed.unroutable == []
    assert {f"{hour:%Y-%m-%d %H}": len(group) for hour, group in routed.hours.items()} == {
        "2026-11-20 10": 2,
        "2026-11-20 11": 1,
    }
