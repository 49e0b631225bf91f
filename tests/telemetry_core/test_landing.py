"""Raw ingest: every landing line becomes an event or a quarantined line with a reason."""

import gzip
import json
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from telemetry_core.landing import (
    landing_files,
    read_lines,
    register_landing,
    unread_landing_files,
)
from telemetry_core.sql import compute_connection
from tests.events import wire_event
from tests.helpers import DAY, HOUR_10, lines_table, rows, run_stage, write_landing

HOUR_KEY = "2026-11-20-10:00"


def reject_reasons(*lines: str) -> list[str | None]:
    with closing(compute_connection()) as con:
        register_landing(con, lines_table([line.encode() for line in lines]))
        run_stage(con, "raw", "raw_events", HOUR_10)
        return [row["reject_reason"] for row in rows(con, "select * from raw_events "
                                                         "order by line_number")]


def event_json(**fields) -> str:
    return json.dumps(wire_event(**fields))


def test_valid_event_is_flattened_to_spec_names():
    with closing(compute_connection()) as con:
        register_landing(con, lines_table([event_json(
            cc="ms.b.tel.scenario=a", sc_scenario="b", sc_partner="c", test_header="t",
            quote_is_test="false", is_test="", lib_ver="4.10.2", status=3, latency=12.5,
        ).encode()]))
        run_stage(con, "raw", "raw_events", HOUR_10)
        (row,) = rows(con, "select * from raw_events")
    assert row["reject_reason"] is None
    assert row["event_id"] == "e1"
    assert str(row["event_time"]) == "2026-11-20 10:15:00"
    assert row["base_type"] == "Ms.Qos.IncomingServiceRequest"
    assert (row["cloud_environment"], row["role_instance"]) == ("prod", "ri-1")
    assert (row["sll_version"], row["sll_major"]) == ("4.10.2", 4)
    assert row["correlation_context"] == "ms.b.tel.scenario=a"
    assert (row["operation_name"], row["caller_name"], row["request_type"]) == (
        "GetQuote", "caller-app", "GET")
    assert (row["latency_ms"], row["request_status"]) == (12.5, 3)
    assert (row["sc_scenario"], row["sc_partner"], row["test_header"]) == ("b", "c", "t")
    assert (row["quote_is_test"], row["is_test"]) == ("false", "")


# One line of every reject reason (the Spark raw stage is held to the same verdicts).
MALFORMED_LINES = [
    ("this is not json", "not valid JSON"),
    ('{"id": "x", "time": ', "not valid JSON"),
    ("[1, 2, 3]", "JSON value is not an object"),
    ('"just a string"', "JSON value is not an object"),
    (json.dumps({"time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"}}),
     "missing required field id"),
    (event_json(event_id=""), "id is empty"),
    (event_json(time=None), "missing required field time"),
    (event_json(time=1763633700), "time must be a string"),
    (event_json(time="yesterday"), "time is not an ISO-8601 timestamp"),
    (event_json(base_type=None), "missing required field data.baseType"),
    (event_json(base_type=7), "data.baseType must be a string"),
    (event_json(latency="fast"), "data.baseData.latencyMs must be a number"),
    (event_json(latency=-1), "data.baseData.latencyMs must not be negative"),
    ('{"id": "x", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "t", '
     '"baseData": {"latencyMs": 1e309}}}', "data.baseData.latencyMs must be a finite number"),
    (event_json(status="ok"), "data.baseData.requestStatus must be an integer"),
    (event_json(status=2.5), "data.baseData.requestStatus must be an integer"),
    (event_json(cc=["a"]), "data.cC must be a string"),
    (event_json(environment=5), "ext.cloud.environment must be a string"),
    (event_json(is_test=True), "data.isTest must be a string"),
    (event_json(status=2147483648), "data.baseData.requestStatus must be an integer"),
    (json.dumps({**wire_event(), "ext": "x"}), "ext must be an object"),
    (json.dumps({**wire_event(), "ext": {"cloud": [1], "sll": {"libVer": "5"}}}),
     "ext.cloud must be an object"),
    (json.dumps({**wire_event(), "ext": {"cloud": {}, "sll": 5}}), "ext.sll must be an object"),
    (json.dumps({**wire_event(), "data": "x"}), "data must be an object"),
    (json.dumps({**wire_event(), "data": {"baseType": "x", "baseData": "y"}}),
     "data.baseData must be an object"),
    (event_json(time="2026-11-20T11:00:00.000Z"),
     "time is outside the hour of its landing folder"),
    (event_json(time="2026-11-20T09:59:59.999Z"),
     "time is outside the hour of its landing folder"),
]


@pytest.mark.parametrize(("line", "reason"), MALFORMED_LINES)
def test_malformed_line_is_rejected_with_its_reason(line, reason):
    assert reject_reasons(line) == [reason]


def test_id_as_number_is_a_wrong_type():
    line = json.dumps({**wire_event(), "id": 42})
    assert reject_reasons(line) == ["id must be a string"]


@pytest.mark.parametrize("status", [None, 4.0, 0, 2147483647])
def test_optional_and_integral_values_are_accepted(status):
    assert reject_reasons(event_json(status=status, latency=None)) == [None]


def test_empty_or_null_containers_are_accepted():
    bare = {"id": "e1", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"}}
    assert reject_reasons(
        json.dumps(bare),
        json.dumps({**bare, "ext": {}}),
        json.dumps({**bare, "ext": None, "data": {"baseType": "x", "baseData": {}}}),
        json.dumps({**bare, "ext": {"cloud": None, "sll": {}}}),
    ) == [None, None, None, None]


def test_hour_edges_belong_to_their_own_hour():
    assert reject_reasons(
        event_json(time="2026-11-20T10:00:00.000Z"),
        event_json(time="2026-11-20T10:59:59.999Z"),
        event_json(time="2026-11-20T12:15:03.120+02:00"),
    ) == [None, None, None]


def test_invalid_utf8_is_quarantined():
    with closing(compute_connection()) as con:
        register_landing(con, lines_table([b'{"id": "\xff\xfe"}']))
        run_stage(con, "raw", "raw_events", HOUR_10)
        (row,) = rows(con, "select reject_reason, raw_line from raw_events")
    assert row["reject_reason"] == "line is not valid UTF-8"
    assert "\\xFF\\xFE" in row["raw_line"]


def test_truncated_gzip_keeps_the_readable_lines_and_reports_the_rest(tmp_path):
    lines = [event_json(event_id=f"e{i}") for i in range(2000)]
    payload = gzip.compress("\n".join(lines).encode() + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(payload[: len(payload) * 2 // 3])
    table, defects = read_lines([path])
    assert 0 < table.num_rows < 2000
    assert table.column("line_number").to_pylist() == list(range(1, table.num_rows + 1))
    assert all(line == expected.encode() + b"\n" for line, expected in
               zip(table.column("line").to_pylist(), lines, strict=False))
    (defect,) = defects
    assert defect.reason.startswith("truncated gzip member")
    assert defect.line_number == table.num_rows + 1


def test_concatenated_gzip_members_and_crlf_are_read(tmp_path):
    path = tmp_path / "two.jsonl.gz"
    path.write_bytes(gzip.compress(b"a\r\nb\n") + gzip.compress(b"c\n\nd"))
    table, defects = read_lines([path])
    assert defects == []
    # Each line keeps its newline (the raw stage strips it); the last one had none.
    assert table.column("line").to_pylist() == [b"a\r\n", b"b\n", b"c\n", b"\n", b"d"]


def test_landing_files_ignore_temporary_and_foreign_files(tmp_path):
    hour = DAY.replace(hour=10)
    keep = write_landing(tmp_path, hour, "a", [wire_event()])
    zipped = write_landing(tmp_path, hour, "b", [wire_event()], compress=True)
    folder = keep.parent
    (folder / ".a.jsonl.tmp").write_text("partial")
    (folder / "notes.txt").write_text("x")
    assert landing_files(tmp_path, hour) == [keep, zipped]


def test_partition_quarantines_bad_lines_and_processes_the_rest(platform):
    landing = platform.settings.landing_dir
    hour = DAY.replace(hour=10)
    write_landing(landing, hour, "good", [
        wire_event("a"), "", "garbage {", wire_event("b", latency="slow"), "   ",
        wire_event("c"),
    ])
    good_lines = [event_json(event_id=f"z{i}") for i in range(500)]
    payload = gzip.compress("\n".join(good_lines).encode())
    cut = landing_files(landing, hour)[0].parent / "cut.jsonl.gz"
    cut.write_bytes(payload[: len(payload) // 2])

    platform.run_reference()
    platform.run_hours(HOUR_KEY)

    rejected = platform.query(
        "select file, line_number, reason, raw_line, partition_key "
        "from quarantine.rejected_events order by file, line_number")
    by_line = {(row["file"].rsplit("/", 1)[1], row["line_number"]): row for row in rejected}
    assert by_line[("good.jsonl", 3)]["reason"] == "not valid JSON"
    assert by_line[("good.jsonl", 3)]["raw_line"] == "garbage {"
    assert by_line[("good.jsonl", 4)]["reason"] == "data.baseData.latencyMs must be a number"
    truncated = [row for row in rejected if row["file"] == str(cut)]
    assert len(truncated) == 1 and truncated[0]["reason"].startswith("truncated gzip member")
    assert {row["partition_key"] for row in rejected} == {HOUR_KEY}
    assert len(rejected) == 3  # blank lines are skipped, not rejected

    (counts,) = platform.query(
        "select count(*) as events, count(distinct event_id) as ids from raw.raw_events")
    readable_cut_lines = truncated[0]["line_number"] - 1
    assert counts["events"] == 2 + readable_cut_lines  # a and c; b is quarantined
    assert readable_cut_lines > 0


def test_leading_whitespace_and_byte_order_mark_do_not_hide_an_event():
    assert reject_reasons(
        "\t" + event_json(event_id="tabbed"),
        "\ufeff" + event_json(event_id="bom"),
    ) == [None, None]


def test_event_ids_are_trimmed_so_padded_copies_are_duplicates():
    from tests.helpers import classify

    result = classify([wire_event(" e1 "), wire_event("e1")])
    assert [row["event_id"] for row in result] == ["e1", "e1"]
    assert sorted(str(row["exclusion_reason"]) for row in result) == ["None", "duplicate"]


@pytest.mark.parametrize("damage", ["crc", "middle", "second_member"])
def test_damaged_gzip_keeps_every_line_before_the_damage(tmp_path, damage):
    lines = [event_json(event_id=f"e{i}") for i in range(1500)]
    member = gzip.compress("\n".join(lines).encode() + b"\n")
    broken = bytearray(member)
    if damage == "middle":
        broken[len(broken) // 2] ^= 0xFF
    else:
        broken[-6] ^= 0xFF  # the CRC of the uncompressed data, in the member's trailer
    payload = member + bytes(broken) if damage == "second_member" else bytes(broken)
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(payload)
    table, defects = read_lines([path])
    (defect,) = defects
    assert defect.reason.startswith("corrupt gzip data")
    assert defect.line_number == table.num_rows + 1
    expected = {"crc": 1500, "second_member": 3000}.get(damage)
    if expected:
        assert table.num_rows == expected  # all the data was there; only the trailer is bad
    else:
        # Deflate may decode past a flipped byte into garbled text (quarantined later as not
        # JSON) before the CRC catches it: either way the lines before it are all kept.
        assert 600 <= table.num_rows <= 1500
        read = table.column("line").to_pylist()
        assert read[:600] == [line.encode() + b"\n" for line in lines[:600]]


def test_files_no_hour_reads_are_named_with_the_reason(tmp_path: Path):
    events = tmp_path / "events"
    hour = events / "date=2026-11-20" / "hour=10"
    hour.mkdir(parents=True)
    for name in ("a.jsonl", "b.jsonl.gz", ".c.jsonl.1234.tmp", "notes.txt"):
        (hour / name).write_bytes(b"")
    for folder, name in (("date=1970-01-01/hour=00", "epoch.jsonl"),
                         ("date=2026-13-40/hour=00", "bad-date.jsonl"),
                         ("date=2026-11-20/hour=10/extra", "deep.jsonl"),
                         ("date=2026-11-28/hour=13", "soon.jsonl"),
                         ("date=2026-11-28/hour=14", "later.jsonl")):
        (events / folder).mkdir(parents=True)
        (events / folder / name).write_bytes(b"")
    (events / "stray.jsonl").write_bytes(b"")

    unread = unread_landing_files(tmp_path, now=datetime(2026, 11, 28, 12, 50))
    assert {Path(file.path).name: file.reason for file in unread} == {
        "notes.txt": "not a .jsonl or .jsonl.gz file",
        "epoch.jsonl": "before the first partition (2026-01-01)",
        "bad-date.jsonl": "not in a date=YYYY-MM-DD/hour=HH folder",
        "deep.jsonl": "not in a date=YYYY-MM-DD/hour=HH folder",
        "later.jsonl": "in an hour more than an hour ahead",
        "stray.jsonl": "not in a date=YYYY-MM-DD/hour=HH folder",
    }
    assert unread_landing_files(tmp_path / "nothing-landed-yet", now=datetime(2026, 11, 28)) == []
