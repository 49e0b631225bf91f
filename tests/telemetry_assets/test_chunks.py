"""Quiet partitions computed together (stage.map_chunks): how a range is cut into chunks, and a
chunk of hours writing the very files that one run per hour writes, with an event outside its
folder's hour, a copy in an earlier hour of the chunk and two copies in one hour among them."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import TimeWindow

from telemetry_assets.partitions import Grain, windows_of
from telemetry_assets.stage import CHUNK_INPUT_BYTES, CHUNK_PARTITIONS, chunked, input_bytes
from telemetry_assets.tables import (
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    RAW_EVENTS,
    REJECTED_EVENTS,
)
from telemetry_core.landing import landing_bytes
from tests.events import wire_event
from tests.helpers import same_rows, write_landing
from tests.platform import make_platform

HOUR = timedelta(hours=1)
TEN = datetime(2026, 11, 20, 10)
KEYS = ["2026-11-20-10:00", "2026-11-20-11:00", "2026-11-20-12:00"]


def hours(count: int, start: datetime = TEN) -> list[tuple[str, TimeWindow]]:
    return [(f"{start + n * HOUR:%Y-%m-%d-%H:00}", TimeWindow(start + n * HOUR,
                                                             start + (n + 1) * HOUR))
            for n in range(count)]


def test_consecutive_small_partitions_share_a_chunk_up_to_its_limits():
    assert [len(chunk) for chunk in chunked(hours(30), lambda _: 1)] == [CHUNK_PARTITIONS, 6]
    # A busy hour is alone, and the input of a chunk never passes the limit.
    busy = {TEN + 2 * HOUR, TEN + 3 * HOUR}
    sizes = [len(chunk) for chunk in chunked(
        hours(6), lambda w: CHUNK_INPUT_BYTES if w.start in busy else CHUNK_INPUT_BYTES // 3)]
    assert sizes == [2, 1, 1, 2]
    # A gap in the range ends a chunk: a chunk spans one window.
    gapped = hours(2) + hours(2, TEN + 5 * HOUR)
    assert [[key for key, _ in chunk] for chunk in chunked(gapped, lambda _: 0)] == [
        [key for key, _ in hours(2)], [key for key, _ in hours(2, TEN + 5 * HOUR)]]


def landed_at(path: Path, hour: int, minute: int) -> None:
    when = datetime(2026, 11, 20, hour, minute, tzinfo=UTC).timestamp()
    os.utime(path, (when, when))


def land(landing_dir: Path) -> None:
    # 10:00's folder holds an event of 11:05: rejected, not counted in 11:00. The folder landed
    # last of all (a re-delivery): landing order decides only within an hour.
    ten = write_landing(landing_dir, TEN, "ten", [
        wire_event("a", time="2026-11-20T10:15:00Z"),
        wire_event("stray", time="2026-11-20T11:05:00Z"),
        wire_event("b", time="2026-11-20T10:40:00Z", status=9, latency=700.0),
    ])
    landed_at(ten, 12, 50)
    # `a` again at 11:10: a duplicate of the copy in the chunk's earlier hour.
    eleven = write_landing(landing_dir, TEN + HOUR, "eleven", [
        wire_event("a", time="2026-11-20T11:10:00Z", status=9),
        wire_event("c", time="2026-11-20T11:20:00Z", latency=40.0),
    ])
    landed_at(eleven, 11, 30)
    # Two copies of `d` in 12:00: the file that landed first holds the event.
    late = write_landing(landing_dir, TEN + 2 * HOUR, "a-retry",
                         [wire_event("d", time="2026-11-20T12:30:00Z", status=9)])
    first = write_landing(landing_dir, TEN + 2 * HOUR, "b-original",
                          [wire_event("d", time="2026-11-20T12:30:00Z", latency=5.0)])
    landed_at(first, 12, 31)
    landed_at(late, 12, 32)


TABLES = (RAW_EVENTS, REJECTED_EVENTS, FILTERED_EVENTS, EVENT_OUTCOMES, MINUTE_AGGREGATE,
          MINUTE_LATENCY)


def every_table(platform) -> dict[str, list[dict]]:
    """Every row of the hourly tables, landing files named without the platform's folder."""
    def comparable(row: dict) -> dict:
        return {name: Path(value).name if name in ("source_file", "file") else value
                for name, value in row.items()}

    return {table.qualified_name: sorted(
        (comparable(row) for row in platform.query(f"select * from {table.qualified_name}")),
        key=repr) for table in TABLES}


def processed(root: Path, hour_by_hour: bool) -> dict[str, list[dict]]:
    root.mkdir()
    with make_platform(root) as platform:
        landing = platform.settings.landing_dir
        land(landing)
        platform.run_reference()
        if hour_by_hour:
            for key in KEYS:
                platform.run_hours(key)
        else:
            platform.run_hours(*KEYS)
            # The range was one chunk for each stage of the hour.
            partitions = windows_of(Grain.HOUR, KEYS)
            assert len(chunked(partitions, lambda w: landing_bytes(landing, w.start))) == 1
            for table in (FILTERED_EVENTS, MINUTE_AGGREGATE):
                assert len(chunked(partitions, input_bytes(platform.lake, table.inputs))) == 1
        return every_table(platform)


def test_a_chunk_of_hours_writes_what_a_run_per_hour_writes(tmp_path: Path):
    figures = {"range": processed(tmp_path / "range", hour_by_hour=False),
               "hour by hour": processed(tmp_path / "hour-by-hour", hour_by_hour=True)}
    chunk, per_hour = figures["range"], figures["hour by hour"]
    assert same_rows(chunk, per_hour), (chunk, per_hour)
    rejected = chunk[REJECTED_EVENTS.qualified_name]
    assert [(row["line_number"], row["reason"], row["partition_key"]) for row in rejected] == [
        (2, "time is outside the hour of its landing folder", "2026-11-20-10:00")]
    kept = {(row["event_id"], row["is_success"])
            for row in chunk[FILTERED_EVENTS.qualified_name]}
    assert kept == {("a", True), ("b", False), ("c", True), ("d", True)}
    outcomes = {(str(row["hour"]), row["outcome"]): row["events"]
                for row in chunk[EVENT_OUTCOMES.qualified_name]}
    assert outcomes == {("2026-11-20 10:00:00", "kept"): 2, ("2026-11-20 11:00:00", "kept"): 1,
                        ("2026-11-20 11:00:00", "duplicate"): 1,
                        ("2026-11-20 12:00:00", "kept"): 1,
                        ("2026-11-20 12:00:00", "duplicate"): 1}
    minutes = {str(row["minute"]): row["total_requests"]
               for row in chunk[MINUTE_AGGREGATE.qualified_name]}
    assert minutes == {"2026-11-20 10:15:00": 1, "2026-11-20 10:40:00": 1,
                       "2026-11-20 11:20:00": 1, "2026-11-20 12:30:00": 1}
