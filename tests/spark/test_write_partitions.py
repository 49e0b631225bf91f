"""One Spark job writes a chunk's partition files: each file holds its own rows only, in order,
an empty partition still gets its file (the schema alone), and nothing is left beside them, not
even what a killed write left a day ago."""

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from telemetry_core.spark import (
    PARTITION_INDEX,
    STALE_AFTER_S,
    session,
    stop_all,
    tag_partitions,
    window_conditions,
    write_partitions,
)

pytestmark = pytest.mark.spark

HOURS = [(datetime(2026, 11, 20, hour), datetime(2026, 11, 20, hour + 1)) for hour in (9, 10, 11)]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    yield session("local[2]")
    stop_all()


def test_each_partition_file_holds_its_window_rows_in_order_and_an_empty_one_its_schema(
        spark, tmp_path: Path):
    rows = [(f"e{n}", datetime(2026, 11, 20, 9 + 2 * (n % 2), 59 - n), 100 - n) for n in range(20)]
    # 08:59 and 12:00 lie in no window of the chunk.
    rows += [("before", datetime(2026, 11, 20, 8, 59), 1), ("after", datetime(2026, 11, 20, 12), 2)]
    frame = spark.createDataFrame(rows, "event_id string, event_time timestamp_ntz, rank long")
    paths = [tmp_path / "table" / f"hour={start:%H}" / "data.parquet" for start, _end in HOURS]
    # An earlier file of the quiet hour is replaced, as a re-run replaces it.
    paths[1].parent.mkdir(parents=True)
    paths[1].write_bytes(b"an earlier partition file")
    # A write SIGKILLed a day ago left its staging folder; one of a write still going is younger.
    killed = tmp_path / "table" / ".spark-killed"
    (killed / f"{PARTITION_INDEX}=0").mkdir(parents=True)
    (killed / f"{PARTITION_INDEX}=0" / "part-0.parquet").write_bytes(b"half a file")
    long_ago = time.time() - STALE_AFTER_S - 60
    os.utime(killed, (long_ago, long_ago))
    going = tmp_path / "table" / ".spark-going"
    going.mkdir()

    counts = write_partitions(tag_partitions(frame, window_conditions("event_time", HOURS)),
                              paths, order_by=["rank"])

    assert counts == [10, 0, 10]
    for path, (start, end), count in zip(paths, HOURS, counts, strict=True):
        table = pq.read_table(path)
        assert table.column_names == ["event_id", "event_time", "rank"]
        assert PARTITION_INDEX not in table.column_names and table.num_rows == count
        assert all(start <= moment < end for moment in table.column("event_time").to_pylist())
        ranks = table.column("rank").to_pylist()
        assert ranks == sorted(ranks)
    assert sorted(path.name for path in (tmp_path / "table").iterdir()) == [
        ".spark-going", "hour=09", "hour=10", "hour=11"]
    assert [sorted(p.name for p in path.parent.iterdir()) for path in paths] == [
        ["data.parquet"]] * 3
