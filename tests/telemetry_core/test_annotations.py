"""Annotations: what is refused and why, and a store that keeps every writer's rows once."""

import multiprocessing
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest

from telemetry_assets.lake import Lake
from telemetry_assets.tables import ANNOTATIONS
from telemetry_core.annotations import (
    MAX_TEXT_CHARS,
    Annotation,
    AnnotationError,
    AnnotationStore,
    KnownScopes,
    build,
    platform_id,
)

KNOWN = KnownScopes(frozenset({"checkout.purchase_quote"}), frozenset({"checkout"}))
AT = datetime(2026, 11, 20, 10, 15)


def refused(fields: dict) -> AnnotationError:
    with pytest.raises(AnnotationError) as caught:
        build(fields, source="test", known=KNOWN)
    return caught.value


@pytest.mark.parametrize(("fields", "field", "said"), [
    ({"text": "x", "start": "2026-11-20T10:15:00Z", "end": "2026-11-20T10:14:59Z"},
     "end", "before it starts"),
    ({"text": "x", "scope": "team:sre"}, "scope", "unknown scope 'team:sre'"),
    ({"text": "x", "scope": "scenario:Nope"}, "scope", "unknown scenario 'Nope'"),
    ({"text": "x", "scope": "service:"}, "scope", "needs a value"),
    ({"text": "x", "scope": "all:everything"}, "scope", "takes no value"),
    ({"text": "a" * (MAX_TEXT_CHARS + 1)}, "text", f"is {MAX_TEXT_CHARS + 1:,} characters"),
    ({"text": "   "}, "text", "is required"),
    ({}, "text", "is required"),
    ({"text": "x", "start": "yesterday"}, "start", "is not an ISO-8601 time"),
    ({"text": "x", "start": 1732097700}, "start", "must be an ISO-8601 time"),
    ({"text": "x", "kind": "Deploy Now"}, "kind", "lower-case word"),
    ({"text": "x", "link": "javascript:alert(1)"}, "link", "http(s) URL"),
    ({"text": "x", "colour": "red"}, "colour", "unknown field"),
    ({"text": "x", "start": "0001-01-01T00:00:00+01:00"}, "start", "is not an ISO-8601 time"),
    ({"text": "x", "start": "2200-01-01T00:00:00Z"}, "start", "is not between 2000 and 2100"),
    ({"text": "x", "scope": "partner:" + "p" * 201}, "scope", "longer than 200 characters"),
])
def test_a_bad_annotation_is_refused_naming_the_field_and_the_reason(fields, field, said):
    error = refused(fields)
    assert error.field == field and said in error.reason, error


def test_a_good_annotation_is_normalised_to_naive_utc_and_its_scope_matched_loosely():
    annotation = build({"text": " deployed v1.2 ", "kind": "deploy",
                        "scope": "Scenario: CHECKOUT.purchase_quote ",
                        "start": "2026-11-20T11:15:00+01:00", "end": "2026-11-20T10:45:00Z",
                        "link": "https://ci.example/builds/1"}, source="api", known=KNOWN)
    assert (annotation.starts_at, annotation.ends_at) == (AT, datetime(2026, 11, 20, 10, 45))
    assert (annotation.scope, annotation.scope_value) == ("scenario", "CHECKOUT.purchase_quote")
    assert annotation.text == "deployed v1.2" and annotation.kind == "deploy"
    # Partners are not checked against customers.csv: traffic names partners it does not.
    assert build({"text": "x", "scope": "partner:initech"}, "api", KNOWN).scope_value == "initech"
    now = datetime(2026, 12, 1, 9, 30)
    assert build({"text": "x"}, "cli", KNOWN, now=now).starts_at == now


def note(start: datetime, text: str = "x", end: datetime | None = None,
         annotation_id: str | None = None) -> Annotation:
    extra = {"annotation_id": annotation_id} if annotation_id else {}
    return Annotation(starts_at=start, ends_at=end, kind="note", text=text, source="test",
                      **extra)


def test_the_store_is_the_lakes_table_and_keeps_each_id_once(tmp_path):
    store = AnnotationStore(tmp_path / "lake")
    assert store.day_path(AT.date()) == Lake(tmp_path / "lake", tmp_path / "w.duckdb") \
        .partition_path(ANNOTATIONS, AT)
    same = platform_id("late_data", "late-hour:2026-11-20-10:00:1.5")
    assert len(store.add([note(AT, "first", annotation_id=same), note(AT, "other")])) == 2
    assert store.add([note(AT, "again", annotation_id=same)]) == []
    rows = pq.read_table(store.day_path(AT.date())).to_pylist()
    assert sorted(row["text"] for row in rows) == ["first", "other"]


def test_between_finds_what_overlaps_including_ranges_begun_days_before(tmp_path):
    store = AnnotationStore(tmp_path / "lake")
    day = datetime(2026, 11, 20)
    store.add([
        note(day - timedelta(days=2), "freeze", end=day + timedelta(hours=3)),
        note(day - timedelta(days=2), "over before"),
        note(day - timedelta(seconds=1), "just before"),
        note(day, "midnight"),
        note(day + timedelta(hours=23, minutes=59), "last minute"),
        note(day + timedelta(days=1), "next day"),
    ])
    # A range is half-open: one that ends at midnight is not of the next day.
    store.add([note(day - timedelta(hours=1), "ends at midnight", end=day)])
    found = [a.text for a in store.between(day, day + timedelta(days=1))]
    assert found == ["freeze", "midnight", "last minute"]


def _write_many(lake_dir: str, writer: int, count: int) -> None:
    store = AnnotationStore(lake_dir)
    for n in range(count):
        store.add([note(AT + timedelta(seconds=n), f"{writer}-{n}")])


def test_writers_in_several_processes_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path / "lake"), w, 25))
               for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    texts = {a.text for a in AnnotationStore(tmp_path / "lake").between(AT, AT + timedelta(1))}
    assert texts == {f"{w}-{n}" for w in range(4) for n in range(25)}


@pytest.mark.parametrize(("scenarios", "partners", "scope"), [
    ("checkout.*", "*", ("all", None)),
    ("checkout.quote", "*", ("scenario", "checkout.quote")),
    ("*", "contoso", ("partner", "contoso")),
    ("checkout.quote", "contoso", ("all", None)),
])
def test_a_maintenance_window_is_noted_on_the_charts_it_names(scenarios, partners, scope):
    from telemetry_assets.assets.reference import maintenance_annotation
    from telemetry_core.slos import MaintenanceWindow

    window = MaintenanceWindow(AT, AT + timedelta(hours=2), scenarios, partners, "upgrade")
    noted = maintenance_annotation(window)
    assert (noted.scope, noted.scope_value) == scope
    assert (noted.starts_at, noted.ends_at, noted.kind) == (AT, AT + timedelta(hours=2),
                                                            "maintenance")
    assert f"{scenarios!r}" in noted.text and "upgrade" in noted.text
    assert noted.annotation_id == maintenance_annotation(window).annotation_id
