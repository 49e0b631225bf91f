"""Partitioned Parquet storage, and the DuckDB warehouse of views over it.

Each partition of each table is one Parquet file, written to a temporary name, fsynced and
renamed over the previous version. A re-run replaces exactly that partition, an interrupted run
leaves the previous file in place, and runs for different partitions never touch the same file,
so any number of processes can write at once. The warehouse file only holds views over the
files, for other tools; it is opened read-write for the few milliseconds it takes to (re)define
them. The platform's own readers (dashboard, CLI, mood) make their views afresh: see Lake.read.

Provisional partitions (the open hours and today, SPEC §8) live in a lake of the same layout
under `live/`, written by telemetry_assets/live.py. Only a reader that asks for them sees them,
each in place of an exact partition that does not exist yet: an exact file always wins.
"""

import contextlib
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

import duckdb
import pyarrow.parquet as pq
from dagster import TimeWindow

from telemetry_assets.partitions import Grain, partition_starts
from telemetry_core.durable import replacing

T = TypeVar("T")


@dataclass(frozen=True)
class Table:
    """A table of the lake; `schema` is the pipeline stage, also the Dagster group."""

    schema: str
    name: str
    grain: Grain
    # The tables its SQL reads: registered as views by name, and the asset's upstream deps.
    inputs: tuple["Table", ...] = ()
    # The asset that writes the table, when it is a side output of an asset named otherwise.
    written_by: str | None = None
    # The time column that places each row in its partition, for a stage whose rows of a
    # partition depend on that partition's input rows alone: several of its partitions can then
    # be computed by one statement and split by this column (see stage.py).
    partition_column: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def asset(self) -> str:
        return self.written_by or self.name


@dataclass(frozen=True)
class Reading(Generic[T]):
    """A reader's answer, and the damaged files it was answered without (each described with
    the command that repairs it)."""

    value: T
    damage: tuple[str, ...] = ()


def note_damage(error: Exception, damage: tuple[str, ...]) -> None:
    """Name the damaged files an answer was read without on the error it ended in: the query's
    own answer ("no such day", say) may be due to them."""
    for described in damage:
        error.add_note(f"left out a damaged file: {described}")


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """Which version of a file is there: a rewrite renames a new inode over it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class UpstreamMissing(RuntimeError):
    """An input partition has not been materialized yet."""


_PARQUET_PATH = re.compile(r"'([^']+\.parquet)'")


def _partition_dir(table: Table, start: datetime | None) -> str:
    if table.grain is Grain.SNAPSHOT:
        return "current"
    if start is None:
        raise ValueError(f"{table.qualified_name} is partitioned by {table.grain.value}")
    # No ':' (Hadoop-style readers such as Spark reject it) and no `key=value` form: DuckDB and
    # Spark would read that as a partition column, and `hour` would shadow a real column.
    return f"{start:{_DIR_FORMATS[table.grain]}}"


# The provisional lake's folder under the lake root.
LIVE_DIR = "live"


# A partition's directory name by grain; read back by repair_hint.
_DIR_FORMATS = {Grain.HOUR: "%Y-%m-%dT%H", Grain.DAY: "%Y-%m-%d"}
_DIR_STEPS = {Grain.HOUR: timedelta(hours=1), Grain.DAY: timedelta(days=1)}
_CLI_FORMATS = {Grain.HOUR: "%Y-%m-%dT%H:%M", Grain.DAY: "%Y-%m-%d"}


def write_parquet(path: Path, relation: duckdb.DuckDBPyRelation,
                  row_group_size: int | None = None) -> int:
    """Replace `path` with the relation's rows, atomically; returns the row count."""
    with replacing(path) as temporary:
        relation.to_parquet(str(temporary), compression="zstd", row_group_size=row_group_size)
        return pq.read_metadata(temporary).num_rows


def partition_start(dir_name: str, grain: Grain | None = None) -> datetime | None:
    """The start of the partition a directory holds (of `grain`, or of either), if it is one."""
    for each, dir_format in _DIR_FORMATS.items():
        if grain in (None, each):
            try:
                return datetime.strptime(dir_name, dir_format)
            except ValueError:
                continue
    return None


def _view_sql(qualified_name: str, files: str) -> str:
    """A view over partition files (a glob or a list, as SQL). The files hold every column;
    never let a reader derive columns from directory names."""
    return (f"create or replace view {qualified_name} as select * from "
            f"read_parquet({files}, union_by_name = true, hive_partitioning = false)")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Lake:
    """Parquet files under `root`, one per table partition; views over them in `warehouse_path`."""

    def __init__(self, root: Path, warehouse_path: Path):
        self.root = root
        self.warehouse_path = warehouse_path

    @property
    def live(self) -> "Lake":
        """The provisional partitions, in the same layout (never in the warehouse's views)."""
        return Lake(self.root / LIVE_DIR, self.warehouse_path)

    def table_dir(self, table: Table) -> Path:
        return self.root / table.schema / table.name

    def partition_path(self, table: Table, start: datetime | None = None) -> Path:
        return self.table_dir(table) / _partition_dir(table, start) / "data.parquet"

    def damaged_file(self, error: Exception) -> Path | None:
        """The lake file a read failed on, when the error names one (a torn or corrupt file)."""
        for found in _PARQUET_PATH.findall(str(error)):
            path = Path(found)
            if path.is_relative_to(self.root):
                return path
        return None

    def repair_hint(self, path: Path) -> str:
        """What to run so the damaged partition file is written anew."""
        for grain in _DIR_FORMATS:
            start = partition_start(path.parent.name, grain)
            if start is None:
                continue
            end = start + _DIR_STEPS[grain]
            shown = _CLI_FORMATS[grain]
            return (f"re-run its partition, e.g. `telemetry backfill --start {start:{shown}} "
                    f"--end {end:{shown}}` (a re-run replaces the file)")
        return "re-run the asset that writes it"

    def describe_damage(self, error: Exception) -> str | None:
        """For a read that failed on a damaged lake file: which file, why, and the repair."""
        damaged = self.damaged_file(error)
        if damaged is None:
            return None
        return (f"{damaged} cannot be read ({str(error).splitlines()[0]}); "
                f"{self.repair_hint(damaged)}")

    def write(self, table: Table, start: datetime | None, relation: duckdb.DuckDBPyRelation) -> int:
        """Replace one partition with the relation's rows, atomically; returns the row count."""
        return write_parquet(self.partition_path(table, start), relation)

    def partition_files(self, table: Table, window: TimeWindow | None = None, *,
                        existing_only: bool = False) -> list[Path]:
        """The table's partition files in `window`; every one must exist (else UpstreamMissing)
        unless `existing_only`, which keeps the ones there are."""
        paths = [self.partition_path(table, start)
                 for start in partition_starts(table.grain, window)]
        missing = [path for path in paths if not path.exists()]
        if existing_only:
            return [path for path in paths if path not in missing]
        if missing:
            shown = ", ".join(path.parent.name for path in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise UpstreamMissing(
                f"{table.qualified_name} has not been materialized for {shown}{more}: "
                "materialize those partitions first (for example with `telemetry backfill`)"
            )
        return paths

    def register(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        window: TimeWindow | None = None,
        *,
        view_name: str | None = None,
        existing_only: bool = False,
    ) -> int:
        """Expose the table's partitions in `window` to `con` as a view named after the table.

        Every partition must exist, unless `existing_only`: then the ones there are (the view is
        not created when there are none). Returns how many partitions the view reads.
        """
        paths = self.partition_files(table, window, existing_only=existing_only)
        if paths:
            # The files hold every column; never let a reader derive columns from directory names.
            relation = con.read_parquet(
                [str(path) for path in paths], union_by_name=True, hive_partitioning=False
            )
            # Registered, not created: the view is the session's own (see compute_connection).
            con.register(view_name or table.name, relation)
        return len(paths)

    def register_current(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        window: TimeWindow | None,
        *,
        view_name: str | None = None,
    ) -> int:
        """Like `register(..., existing_only=True)`, each partition read from its exact file,
        else from its provisional one. Returns how many partitions the view reads."""
        paths = []
        for start in partition_starts(table.grain, window):
            for lake in (self, self.live):
                if (path := lake.partition_path(table, start)).exists():
                    paths.append(path)
                    break
        if paths:
            con.register(view_name or table.name, con.read_parquet(
                [str(path) for path in paths], union_by_name=True, hive_partitioning=False))
        return len(paths)

    def fingerprint(self, reads: Mapping[Table, TimeWindow | None]) -> tuple:
        """Which version of every partition file the reads would see (a window of None: every
        partition): a rewrite, a new file or a removed one changes it, and so does a change to
        the warehouse's views. Taken before a read, it tells a reader whether figures it kept
        are still those the lake holds."""
        seen: list[tuple] = [("warehouse", file_identity(self.warehouse_path))]
        for table, window in reads.items():
            if table.grain is Grain.SNAPSHOT:
                path = self.partition_path(table)
                seen.append((table.qualified_name, file_identity(path)))
                continue
            # Directory names sort as their times do: the window is a range of names.
            first = last = None
            if window is not None:
                first = f"{window.start:{_DIR_FORMATS[table.grain]}}"
                last = f"{window.end:{_DIR_FORMATS[table.grain]}}"
            try:
                entries = sorted(entry.name for entry in os.scandir(self.table_dir(table))
                                 if first is None or first <= entry.name < last)
            except FileNotFoundError:
                entries = []
            seen.append((table.qualified_name, tuple(
                (name, file_identity(self.table_dir(table) / name / "data.parquet"))
                for name in entries)))
        return tuple(seen)

    def publish_views(self, tables: Iterable[Table]) -> None:
        """Define warehouse views over every partition file of the tables that have any.

        DuckDB binds `select *` over a glob at query time, so a view is defined once and then
        sees every later file and column; runs normally only read the catalog under a shared
        lock and never wait for, nor block, the dashboard's readers.
        """
        wanted = {
            table.qualified_name: _sql_string(str(self.table_dir(table) / "*" / "data.parquet"))
            for table in tables
            if any(self.table_dir(table).glob("*/data.parquet"))
        }
        if not wanted:
            return
        if self.warehouse_path.exists():
            with self.warehouse(read_only=True) as con:
                defined = dict(con.sql(
                    "select schema_name || '.' || view_name, sql from duckdb_views() "
                    "where not internal"
                ).fetchall())
            wanted = {name: glob for name, glob in wanted.items()
                      if glob not in defined.get(name, "")}
            if not wanted:
                return
        with self.warehouse(read_only=False) as con:
            con.execute("begin")
            for name, glob in wanted.items():
                con.execute(f"create schema if not exists {name.split('.')[0]}")
                con.execute(_view_sql(name, glob))
            con.execute("commit")

    def read(self, query: Callable[[duckdb.DuckDBPyConnection], T],
             attempts: int = 8, *, provisional: bool = False) -> "Reading[T]":
        """`query` over the warehouse's views, answered even while a run replaces the files it
        reads, even when one of them is damaged, and even when the lake has moved.

        DuckDB opens a file once to plan a scan and again to read it: a file renamed over in
        between is read with the other file's metadata and the query fails. Readers are far
        more frequent than rewrites, and a retry reads the new file whole (up to `attempts`
        tries over ≈2.5 s: under a storm of rewrites on a loaded machine, five tries over 0.3 s
        were seen to fail twice in 5,000 queries). A file that fails
        again unchanged is damaged: it is left out and named in the answer, so that one torn
        partition hides nothing but itself. Then, or when the warehouse's views read another
        lake than this one, the views are made afresh in memory from the lake as it is.
        """
        left_out: dict[Path, str] = {}
        failed_as: dict[Path, tuple[int, int, int] | None] = {}
        attempt = 0
        while True:
            try:
                with self._reader(set(left_out), provisional) as con:
                    try:
                        return Reading(query(con), tuple(left_out.values()))
                    except Exception as error:
                        note_damage(error, tuple(left_out.values()))
                        raise
            except duckdb.Error as error:
                damaged = self.damaged_file(error)
                if damaged is None and isinstance(error, duckdb.ProgrammingError):
                    raise  # a wrong query or a missing view: asking again changes nothing
                if damaged is not None and damaged not in left_out:
                    identity = file_identity(damaged)
                    if failed_as.get(damaged, ()) == identity:
                        left_out[damaged] = self.describe_damage(error) or str(damaged)
                        continue
                    failed_as[damaged] = identity
                # Mixed metadata shows as "Invalid data", "Could not read enough bytes", ...
                attempt += 1
                if attempt >= attempts:
                    raise
                time.sleep(0.01 * 2 ** attempt)

    @contextlib.contextmanager
    def _reader(self, left_out: set[Path],
                provisional: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse, read-only; or, with files to leave out, provisional partitions or
        views over another lake, views made in memory over this lake's files."""
        if not left_out and not provisional:
            with self.warehouse(read_only=True) as con:
                if all(f"'{self.root}/" in sql for (sql,) in con.execute(
                        "select sql from duckdb_views() where not internal").fetchall()):
                    yield con
                    return
        with self._fresh_views(left_out, provisional) as con:
            yield con

    def _table_dirs(self) -> list[Path]:
        return sorted(path for path in self.root.glob("*/*")
                      if path.is_dir() and path.parent.name != LIVE_DIR)

    @contextlib.contextmanager
    def _fresh_views(self, left_out: set[Path],
                     provisional: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        table_dirs = self._table_dirs()
        live_dirs = {path.relative_to(self.live.root): path
                     for path in (self.live._table_dirs() if provisional else [])}
        if not any(next(path.glob("*/data.parquet"), None)
                   for path in [*table_dirs, *live_dirs.values()]):
            raise FileNotFoundError(
                f"nothing in the lake at {self.root}: run the pipeline first (make demo)"
            )
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            by_name = {path.relative_to(self.root): path for path in table_dirs}
            for name in sorted(by_name.keys() | live_dirs.keys()):
                table_dir = by_name.get(name, self.root / name)
                substitutes = []
                if name in live_dirs:
                    substitutes = [path for path in sorted(live_dirs[name].glob("*/data.parquet"))
                                   if path not in left_out
                                   and not (table_dir / path.parent.name / "data.parquet").exists()]
                if substitutes or any(path.parent.parent == table_dir for path in left_out):
                    files = [str(path) for path in sorted(table_dir.glob("*/data.parquet"))
                             if path not in left_out] + [str(path) for path in substitutes]
                    source = "[" + ", ".join(_sql_string(file) for file in files) + "]"
                else:
                    files = list(itertools.islice(table_dir.glob("*/data.parquet"), 1))
                    source = _sql_string(str(table_dir / "*" / "data.parquet"))
                if not files:
                    continue  # a table whose only file is left out, or with none yet
                con.execute(f"create schema if not exists {name.parent}")
                con.execute(_view_sql(f"{name.parent}.{name.name}", source))
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def warehouse(
        self, read_only: bool = True, timeout_s: float = 60.0
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse, waiting while another process briefly holds its file lock."""
        if not read_only:
            self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.warehouse_path.exists():
            raise FileNotFoundError(
                f"no warehouse at {self.warehouse_path}: run the pipeline first (make demo)"
            )
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            try:
                con = duckdb.connect(str(self.warehouse_path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()
