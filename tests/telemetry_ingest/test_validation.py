"""The receiver's validator on literal lines: the contract it shares with the raw stage."""

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from telemetry_core.landing import classify_event_lines, register_landing
from telemetry_ingest.ingest import Ingestor
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
    (json.dumps(wire_event(time="2026-11-20")).encode(), "time is not an ISO-8601 timestamp"),
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
    assert [verdict.reason for verdict in classify_event_lines([line])] == [reason]


def test_one_call_classifies_a_whole_batch_in_order() -> None:
    lines = [line for line, _ in CASES]
    assert [v.reason for v in classify_event_lines(lines)] == [reason for _, reason in CASES]


def test_valid_events_are_routed_to_their_utc_hour() -> None:
    lines = [
        json.dumps(wire_event("a", "2026-11-20T10:59:59.999Z")).encode(),
        json.dumps(wire_event("b", "2026-11-20T12:30:00+02:00")).encode(),
        json.dumps(wire_event("c", "2026-11-20T11:00:00")).encode(),
    ]
    assert [f"{verdict.hour:%Y-%m-%d %H}" for verdict in classify_event_lines(lines)] == [
        "2026-11-20 10", "2026-11-20 10", "2026-11-20 11"]


# Lines the raw stage accepts but Python's json module cannot handle, or reads differently.
DEEP = b'{"id":"deep-1","time":"2026-11-20T10:15:00Z","data":{"baseType":"IncomingServiceRequest"' \
    b',"baseData":{"requestStatus":0}},"nested":' + b"[" * 5000 + b"]" * 5000 + b"}"
DUPLICATE_TIME = (b'{"id":"dup-1","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},'
                  b'"time":null}')
DUPLICATE_TIME_NUMBER = (b'{"id":"dup-2","time":"2026-11-20T10:15:00Z","data":{"baseType":"x"},'
                         b'"time":7}')
HOUR_24 = json.dumps(wire_event("h24", "2026-11-20T24:00:00Z")).encode()
DATE_ONLY = json.dumps(wire_event("date-only", "2026-11-20")).encode()


def raw_stage_verdict(line: bytes, hour: datetime) -> str | None:
    """What the raw stage says of the line when it reads it from `hour`'s landing folder."""
    from telemetry_core.sql import compute_connection, load_sql
    from tests.helpers import lines_table

    with closing(compute_connection()) as con:
        register_landing(con, lines_table([line]))
        (reason,) = con.execute(
            "select reject_reason from (" + load_sql("raw", "raw_events") + ")",
            {"window_start": hour, "window_end": hour + timedelta(hours=1)},
        ).fetchone()
    return reason


@pytest.mark.parametrize("line", [DEEP, DUPLICATE_TIME, DUPLICATE_TIME_NUMBER, HOUR_24, DATE_ONLY],
                         ids=["deep", "duplicate-time-null", "duplicate-time-number", "hour-24",
                              "date-only"])
def test_one_parse_decides_validity_and_hour_and_the_raw_stage_agrees(line, tmp_path):
    result = Ingestor(tmp_path / "landing").ingest([line], "test")
    (verdict,) = classify_event_lines([line])
    if verdict.reason is not None:
        assert result.rejected == [(0, verdict.reason)] and result.files == []
        return
    assert result.accepted == 1 and result.rejected == []
    (landed,) = result.files
    hour = datetime.strptime(f"{landed.parent.parent.name[5:]} {landed.parent.name[5:]}",
                             "%Y-%m-%d %H")
    assert hour == verdict.hour
    # The landing folder it went to is the one whose hour the pipeline judges it in.
    assert raw_stage_verdict(line, hour) is None


def test_a_poison_line_among_valid_ones_lands_the_valid_ones(tmp_path):
    lines = [json.dumps(wire_event(f"ok-{n}")).encode() for n in range(5)] + [DEEP, b"{nope"]
    result = Ingestor(tmp_path / "landing").ingest(lines, "test")
    assert result.accepted == 6  # the deep line is a valid event: its extra field is ignored
    assert result.rejected == [(6, "not valid JSON")]


def test_times_before_the_first_partition_or_too_far_ahead_are_rejected(tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None)
    lines = [json.dumps(wire_event(name, f"{moment:%Y-%m-%dT%H:%M:%S}Z")).encode()
             for name, moment in (("epoch", datetime(1970, 1, 1)),
                                  ("future", now + timedelta(hours=2)),
                                  ("recent", now - timedelta(minutes=5)),
                                  ("slightly-ahead", now + timedelta(minutes=2)))]
    result = Ingestor(tmp_path / "landing", max_future=timedelta(minutes=15)).ingest(lines, "t")
    reasons = dict(result.rejected)
    assert result.accepted == 2
    assert "before 2026-01-01" in reasons[0]
    assert "in the future" in reasons[1]
