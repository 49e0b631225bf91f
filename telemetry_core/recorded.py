"""Lake tables that people and processes record into, rather than pipeline assets compute:
annotations, batch-job runs and their console lines.

Each keeps the lake's layout (`<schema>/<table>/<YYYY-MM-DD>/data.parquet`, see
telemetry_assets/lake.py), so the warehouse views and every reader see it like any other table.
Writers of one day take turns on a lock file beside the day folders (where no `*/data.parquet`
glob looks), read the day's file, add the rows whose key is new and replace the file atomically:
a writer killed mid-write leaves the previous file, writers in several processes lose none of
each other's rows, and recording the same row twice keeps it once.
"""

import fcntl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from telemetry_core.durable import ensure_dir, replacing

Row = dict[str, Any]


class RecordedTable:
    """One table of the lake under `lake_dir`, a file per day of `day_of(row)`."""

    def __init__(self, lake_dir: Path, schema_name: str, table_name: str, columns: pa.Schema,
                 key: Callable[[Row], tuple], day_of: Callable[[Row], date],
                 order: Callable[[Row], tuple]):
        self.table_dir = Path(lake_dir) / schema_name / table_name
        self.columns, self.key, self.day_of, self.order = columns, key, day_of, order

    def day_path(self, day: date) -> Path:
        return self.table_dir / f"{day:%Y-%m-%d}" / "data.parquet"

    @contextmanager
    def _day_lock(self, day: date) -> Iterator[None]:
        ensure_dir(self.table_dir)
        with open(self.table_dir / f".{day:%Y-%m-%d}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def read_day(self, day: date) -> list[Row]:
        path = self.day_path(day)
        if not path.exists():
            return []
        return pq.read_table(path, schema=self.columns).to_pylist()

    def read_days(self, first: date, last: date) -> list[Row]:
        """Every row of the days from `first` to `last`, both included, in the table's order."""
        rows, day = [], first
        while day <= last:
            rows += self.read_day(day)
            day += timedelta(days=1)
        return sorted(rows, key=self.order)

    def add(self, rows: Iterable[Row], day: date | None = None) -> list[Row]:
        """Record the rows whose key is new (under `day`, if given, rather than each row's own);
        returns those."""
        by_day: dict[date, dict[tuple, Row]] = {}
        for row in rows:
            by_day.setdefault(day or self.day_of(row), {}).setdefault(self.key(row), row)
        added = []
        for day, batch in sorted(by_day.items()):
            with self._day_lock(day):
                existing = self.read_day(day)
                known = {self.key(row) for row in existing}
                new = [row for key, row in batch.items() if key not in known]
                if not new:
                    continue
                table = pa.Table.from_pylist(sorted(existing + new, key=self.order),
                                             schema=self.columns)
                with replacing(self.day_path(day)) as temporary:
                    pq.write_table(table, temporary, compression="zstd")
                added += new
        return added
