"""The raw stage is the one written twice (raw_events.sql for DuckDB, raw_events.spark.sql for
Spark): both must give every landing line the same verdict, reason, line number and values.

The lines are judged side by side on one Spark session in this process (local[2]); the cluster
runs the same SQL in test_parity.py.
"""

import json
import math
from collections.abc import Iterator
from contextlib import closing

import pytest

from telemetry_core.landing import ARRIVAL_SCHEMA, register_landing
from telemetry_core.spark import query, session, stop_all, views_session
from telemetry_core.sql import compute_connection, load_sql, window_params
from tests.events import wire_event
from tests.helpers import HOUR_10, lines_table
from tests.telemetry_core.test_landing import MALFORMED_LINES, event_json

pytestmark = pytest.mark.spark

BARE = {"id": "e1", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"}}

ACCEPTED = [
    event_json(cc="ms.b.tel.scenario=a", sc_scenario="b", sc_partner="c", test_header="t",
               quote_is_test="false", is_test="", lib_ver="4.10.2", status=3, latency=12.5),
    *(event_json(status=status, latency=None) for status in (None, 4.0, 0, 2147483647)),
    event_json(latency=0), event_json(latency=-0.0), event_json(status=-3), event_json(status=1e2),
    json.dumps(BARE), json.dumps({**BARE, "ext": {}}),
    json.dumps({**BARE, "ext": None, "data": {"baseType": "x", "baseData": {}}}),
    json.dumps({**BARE, "ext": {"cloud": None, "sll": {}}}),
    json.dumps({**BARE, "data": {"baseType": "x", "cC": None, "baseData": None}}),
    json.dumps({**BARE, "ID": "other"}),
    event_json(event_id="  padded\t"), event_json(event_id="\u00e9t\u00e9"),
    event_json(lib_ver=" 12.1"), event_json(lib_ver="v2"),
    "\ufeff" + event_json(event_id="after-a-byte-order-mark"),
    "  \t" + event_json(event_id="after-white-space"),
    event_json(event_id="crlf") + "\r",
    # Every time format both engines read, each to the same instant.
    *(event_json(time=time) for time in (
        "2026-11-20T10:00:00.000Z", "2026-11-20T10:59:59.999Z", "2026-11-20T12:15:03.120+02:00",
        "2026-11-20 10:00", "2026-11-20T12:00:00+0200", "2026-11-20T05:00:00-05",
        "2026-11-20T05:00:00 America/New_York", "2026-11-20T10:00:00.1234567Z",
        " 2026-11-20T10:00:00Z ", "2026-11-20T10:00:00 UTC", "2026-11-20T10:00:00.5+00:00")),
]

REJECTED = [
    *(line for line, _ in MALFORMED_LINES),
    event_json(time="2026-11-20t10:00:00Z"), event_json(time="2026-11-20"),
    event_json(time="2026-11-20T25:00:00Z"), event_json(time="+2026-11-20T10:00:00Z"),
    event_json(time="2026-11-20T10:00:00Zjunk"), event_json(latency=True),
    event_json(status=99999999999999999999999), "{'id': 'a'}",
    json.dumps({**BARE, "data": []}), json.dumps({**BARE, "ext": []}),
    json.dumps({**BARE, "data": {"baseType": "x", "baseData": []}}),
    '{"id": "a"} trailing', '{"id": "a"}, {"id": "b"}', '{"id": "a"}] [1', "null", "true",
]

# Where the engines' JSON readers disagree, on lines no JSON encoder writes (RFC 8259 allows no
# trailing comma or NaN; it leaves repeated names unpredictable): DuckDB's reader is lenient,
# Spark's strict. docs/scale-out.md lists these; this pins that the list is still true.
DIALECT_DIFFERENCES = [
    ('{"id": "a", "id": "b", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"}}',
     None, "not valid JSON"),
    ('{"id": "a", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "x"},}',
     None, "not valid JSON"),
    ('{"id": "a", "time": "2026-11-20T10:00:00Z", "data": {"baseType": "x", '
     '"baseData": {"latencyMs": NaN}}}', "data.baseData.latencyMs must be a number",
     "not valid JSON"),
    ('{"a":' * 2000 + "1" + "}" * 2000, "missing required field id", "not valid JSON"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    yield session("local[2]")
    stop_all()


def landing_lines(lines: list[str | bytes]):  # type: ignore[no-untyped-def]
    # A landing line keeps its newline, as the reader splits it.
    return lines_table([(line if isinstance(line, bytes) else line.encode()) + b"\n"
                        for line in lines])


def on_duckdb(lines: list[str | bytes]) -> list[dict]:
    with closing(compute_connection()) as con:
        register_landing(con, landing_lines(lines))
        relation = con.sql(load_sql("raw", "raw_events"), params=window_params(HOUR_10))
        return sorted((dict(zip(relation.columns, row, strict=True))
                       for row in relation.fetchall()), key=lambda row: row["line_number"])


def on_spark(spark, lines: list[str | bytes]) -> list[dict]:  # type: ignore[no-untyped-def]
    own = views_session(spark, arrow={"landing_lines": landing_lines(lines),
                                      "landing_arrivals": ARRIVAL_SCHEMA.empty_table()})
    found = query(own, load_sql("raw", "raw_events.spark"), window_params(HOUR_10)).collect()
    return sorted((row.asDict() for row in found), key=lambda row: row["line_number"])


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9) or (math.isnan(left) and math.isnan(right))
    return left == right


def test_every_line_gets_the_same_verdict_and_values_on_both_engines(spark):
    lines = [*ACCEPTED, *REJECTED, b'{"id": "\xff\xfe"}', b"\xef\xbb\xbf\xc3(", "", "  \t"]
    duck, found = on_duckdb(lines), on_spark(spark, lines)

    assert [row["line_number"] for row in found] == [row["line_number"] for row in duck]
    assert list(found[0]) == list(duck[0])
    differing = [(d["line_number"], column, d[column], s[column])
                 for d, s in zip(duck, found, strict=True) for column in d
                 if not same(d[column], s[column])]
    assert differing == []
    # The corpus means something: every accepted line accepted, every reason met.
    verdicts = [row["reject_reason"] for row in duck]
    assert verdicts[:len(ACCEPTED)] == [None] * len(ACCEPTED)
    assert None not in verdicts[len(ACCEPTED):]
    assert {reason for _, reason in MALFORMED_LINES} | {"line is not valid UTF-8"} <= set(verdicts)
    # Blank lines are skipped by both.
    assert len(duck) == len(lines) - 2


def test_the_documented_dialect_differences_are_the_ones_there_are(spark):
    lines = [line for line, _, _ in DIALECT_DIFFERENCES]
    duck, found = on_duckdb(lines), on_spark(spark, lines)
    assert [(row["reject_reason"], other["reject_reason"]) for row, other in zip(
        duck, found, strict=True)] == [(on_duck, on_spark) for _, on_duck, on_spark in
                                       DIALECT_DIFFERENCES]


def test_wire_events_agree_in_bulk(spark):
    """Ten thousand generator-shaped events: the same rows, not just the same verdicts."""
    lines = [json.dumps(wire_event(event_id=f"bulk-{n}", latency=n * 0.37, status=n % 7,
                                   time=f"2026-11-20T10:{n % 60:02d}:{n % 59:02d}.{n % 999:03d}Z"))
             for n in range(10_000)]
    duck, found = on_duckdb(lines), on_spark(spark, lines)
    assert len(found) == len(duck) == 10_000
    assert all(all(same(d[c], s[c]) for c in d) for d, s in zip(duck, found, strict=True))
