"""The open hours, provisional (SPEC §8): what has landed for the hours no exact run has read
yet, brought to minute aggregates and to today's published tables within a minute of landing.

The exact runs stay the record. A refresh writes its partitions to the provisional lake
(`Lake.live`, the same layout under `live/`), and a reader that asks for provisional figures
(`read_current`) sees each partition from its exact file when there is one, else from its
provisional one: the closed-hour run replaces the provisional figures by existing.

Each landing file is parsed once, whatever the number of refreshes: a refresh parses only the
files that are new or changed since the last one (by inode, modification time and size), all
together into one chunk, and the hour's manifest names the chunk holding each file's current
parse. The chunk is written before the manifest that names it, and every file is replaced
atomically, so a refresh killed at any line leaves the previous refresh whole; a chunk no
manifest names is removed by the next one. The same SQL files as the exact stages compute
every figure.
"""

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
from dagster import TimeWindow

from telemetry_assets.lake import (
    Lake,
    Reading,
    Table,
    file_identity,
    partition_start,
    write_parquet,
)
from telemetry_assets.partitions import Grain, partition_starts
from telemetry_assets.stage import OUTCOMES_SQL, stage_params
from telemetry_assets.tables import (
    DAILY_AGGREGATE,
    DAILY_LATENCY,
    EVENT_OUTCOMES,
    FILTERED_EVENTS,
    LATENCY_PERCENTILES,
    MINUTE_AGGREGATE,
    MINUTE_LATENCY,
    PUBLISHED_TABLES,
    RAW_EVENTS,
    TRANSLATED,
    VALIDATED,
)
from telemetry_core.durable import write_bytes
from telemetry_core.landing import classify_files, landing_files
from telemetry_core.settings import FIRST_PARTITION, Settings
from telemetry_core.sql import BACKGROUND_THREADS, compute_connection, load_sql, utc_naive

T = TypeVar("T")

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The open hour and the two before it: a closed hour stays live until its exact run lands,
# TELEMETRY_HOURLY_DELAY_MINUTES (15 by default) after it ends, or later if that run waits.
LIVE_HOURS = 3
# When each open hour was last refreshed, and from what (one row per hour).
REFRESHES = Table("live", "refreshes", Grain.HOUR)
# The hourly tables a refresh writes; today's daily stages in the order their SQL reads them,
# and those of them that readers read (the others stay in the refresh's session).
HOURLY_TABLES = (MINUTE_AGGREGATE, MINUTE_LATENCY, EVENT_OUTCOMES)
DAILY_CHAIN = (DAILY_AGGREGATE, DAILY_LATENCY, TRANSLATED, VALIDATED, LATENCY_PERCENTILES,
               *PUBLISHED_TABLES)
DAILY_TABLES = (VALIDATED, *PUBLISHED_TABLES)
# Today's tables re-read the whole day (its exact hours too): in the background they follow
# the open hours at most this often; a reader that shows them brings them up to date first
# (`bring_days_up_to_date`), so that cost is paid when someone looks.
BACKGROUND_DAY_REFRESH = timedelta(minutes=5)
_PARSED_DIR = "parsed"
_DIGEST_DIR = "id_digests"
# When each day's provisional tables were made, and from which version of its minutes.
_DAYS_DIR = "days"
_DIGEST_ROW_GROUP = 4096
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class HourRefresh:
    """One open hour after a refresh: as of when, from how many files (and how many of them
    this refresh parsed), and what it holds."""

    hour: datetime
    as_of: datetime
    files: int
    files_parsed: int
    events: int
    rejected: int
    requests: int
    failed: int

    @property
    def changed(self) -> bool:
        return self.files_parsed > 0

    @property
    def partition_key(self) -> str:
        return f"{self.hour:%Y-%m-%d-%H}:00"


def _identity(path: Path) -> list[int] | None:
    """The file's identity as the manifest keeps it (JSON has no tuples)."""
    identity = file_identity(path)
    return None if identity is None else list(identity)


def _floor_hour(moment: datetime) -> datetime:
    return utc_naive(moment).replace(minute=0, second=0, microsecond=0)


def open_hours(lake: Lake, now: datetime) -> list[datetime]:
    """The hours a refresh at `now` keeps up to date: the open hour and the two before it,
    those that have no exact minute aggregate yet."""
    top = _floor_hour(now)
    hours = [top - HOUR * back for back in reversed(range(LIVE_HOURS))]
    return [hour for hour in hours
            if hour >= FIRST_PARTITION and not lake.partition_path(MINUTE_AGGREGATE, hour).exists()]


class _ParsedHour:
    """The parse cache of one hour: chunks of parsed lines and the manifest naming, for each
    landing file, the identity it was parsed at and the chunk holding that parse."""

    def __init__(self, lake: Lake, hour: datetime):
        self.folder = lake.live.root / _PARSED_DIR / f"{hour:%Y-%m-%dT%H}"
        try:
            self.files: dict[str, dict] = json.loads((self.folder / _MANIFEST).read_text())["files"]
        except (FileNotFoundError, ValueError, KeyError):
            self.files = {}

    def chunk_path(self, chunk: str) -> Path:
        return self.folder / f"{chunk}.parquet"

    def save(self) -> None:
        write_bytes(self.folder / _MANIFEST, json.dumps({"files": self.files}, indent=1).encode())
        named = {self.chunk_path(entry["chunk"]).name for entry in self.files.values()}
        for path in self.folder.glob("*.parquet"):
            if path.name not in named:
                path.unlink(missing_ok=True)

    def register(self, con: duckdb.DuckDBPyConnection, view_name: str) -> bool:
        """Every file's current parse as `view_name` (the raw stage's columns); False when the
        hour has no parsed file."""
        current = pa.table({
            "source_file": list(self.files),
            "chunk_file": [str(self.chunk_path(entry["chunk"])) for entry in self.files.values()],
        })
        if not current.num_rows:
            return False
        chunks = sorted(set(current.column("chunk_file").to_pylist()))
        con.register(f"{view_name}_chunks", con.read_parquet(chunks, filename=True,
                                                             union_by_name=True))
        con.register(f"{view_name}_current", current)
        con.execute(
            f"create or replace temp view {view_name} as "
            f"select p.* exclude (filename) from {view_name}_chunks as p "
            f"semi join {view_name}_current as c "
            "on p.source_file = c.source_file and p.filename = c.chunk_file"
        )
        return True


def _parse_new_files(parsed: _ParsedHour, files: Sequence[Path], hour: datetime) -> int:
    """Parse the files whose identity the manifest does not hold into one new chunk, and drop
    from the manifest the files no longer there; returns how many files were parsed."""
    identities = {str(path): identity for path in files if (identity := _identity(path))}
    stale = [Path(name) for name, identity in identities.items()
             if parsed.files.get(name, {}).get("identity") != identity]
    gone = set(parsed.files) - set(identities)
    if not stale and not gone:
        return 0
    for name in gone:
        del parsed.files[name]
    if stale:
        chunk = uuid.uuid4().hex
        with closing(compute_connection(BACKGROUND_THREADS)) as con:
            classify_files(con, stale, TimeWindow(hour, hour + HOUR))
            write_parquet(parsed.chunk_path(chunk), con.sql(
                "select * from classified union all by name "
                "select file as source_file, line_number, reason as reject_reason, raw_line "
                "from stream_defects"
            ))
        for path in stale:
            parsed.files[str(path)] = {"identity": identities[str(path)], "chunk": chunk}
    parsed.save()
    return len(stale)


def _id_digest(lake: Lake, hour: datetime) -> Path | None:
    """The exact raw events of an hour as (hash of the id, id, time), sorted by the hash in
    small row groups: a lookup of a few ids reads a few row groups, not every id of the hour.
    Made once per version of the hour's raw file (and of DuckDB, whose hash it is)."""
    raw = lake.partition_path(RAW_EVENTS, hour)
    identity = _identity(raw)
    if identity is None:
        return None
    folder = lake.live.root / _DIGEST_DIR
    name = f"{hour:%Y-%m-%dT%H}"
    digest = folder / f"{name}-{'-'.join(map(str, identity))}-{duckdb.__version__}.parquet"
    if not digest.exists():
        with closing(compute_connection(BACKGROUND_THREADS)) as con:
            write_parquet(digest, con.read_parquet(str(raw)).project(
                "hash(event_id) as id_hash, event_id, event_time").order("id_hash"),
                row_group_size=_DIGEST_ROW_GROUP)
        for stale in folder.glob(f"{name}-*.parquet"):
            if stale != digest:
                stale.unlink(missing_ok=True)
    return digest


def _register_earlier_copies(con: duckdb.DuckDBPyConnection, lake: Lake, hour: datetime,
                             horizon: timedelta, live_hours: Sequence[datetime]) -> None:
    """`earlier_raw_events` for an open hour: the copies, among the exact raw events of the
    horizon before it, of the ids it holds (looked up by hash, then compared whole), and the
    parsed events of the earlier open hours that no exact run has read yet.

    The horizon holds a day of ids; reading them all at every refresh would cost more than the
    rest of the refresh."""
    parts = []
    digests = [digest for start in partition_starts(Grain.HOUR, TimeWindow(hour - horizon, hour))
               if (digest := _id_digest(lake, start)) is not None]
    if digests:
        con.register("earlier_digests", con.read_parquet([str(path) for path in digests]))
        hashes = [value for (value,) in con.sql(
            "select distinct d.id_hash from earlier_digests as d "
            "semi join (select hash(event_id) as id_hash from raw_events) as r "
            "on d.id_hash = r.id_hash").fetchall()]
        if hashes:
            con.register("earlier_exact", con.table("earlier_digests").filter(
                duckdb.ColumnExpression("id_hash").isin(
                    *(duckdb.ConstantExpression(value) for value in hashes))))
            parts.append("select event_id, event_time from earlier_exact")
    for index, earlier in enumerate(h for h in live_hours if hour - horizon <= h < hour):
        if _ParsedHour(lake, earlier).register(con, f"earlier_open_{index}"):
            parts.append(f"select event_id, event_time from earlier_open_{index} "
                         "where reject_reason is null")
    parts.append("select cast(null as varchar) as event_id, "
                 "cast(null as timestamp) as event_time where false")
    con.execute("create or replace temp view earlier_raw_events as "
                + " union all ".join(parts))


def refresh_hour(lake: Lake, settings: Settings, horizon: timedelta, hour: datetime,
                 as_of: datetime, live_hours: Sequence[datetime]) -> HourRefresh:
    """Bring one open hour up to date with its landing folder as listed at `as_of`."""
    files = landing_files(settings.landing_dir, hour)
    parsed = _ParsedHour(lake, hour)
    files_parsed = _parse_new_files(parsed, files, hour)
    window = TimeWindow(hour, hour + HOUR)
    live = lake.live
    if not parsed.files:
        # Nothing has landed for the hour (or what had is gone): it has no figures to show.
        for table in (*HOURLY_TABLES, REFRESHES):
            shutil.rmtree(live.partition_path(table, hour).parent, ignore_errors=True)
        return HourRefresh(hour, as_of, 0, files_parsed, 0, 0, 0, 0)
    with closing(compute_connection(BACKGROUND_THREADS)) as con:
        if files_parsed or not live.partition_path(REFRESHES, hour).exists():
            parsed.register(con, "hour_lines")
            con.execute("create temp view raw_events as select * exclude "
                        "(reject_reason, raw_line) from hour_lines where reject_reason is null")
            _register_earlier_copies(con, lake, hour, horizon, live_hours)
            for table in FILTERED_EVENTS.inputs:
                if table is not RAW_EVENTS:
                    lake.register(con, table)
            sql = load_sql(FILTERED_EVENTS.schema, FILTERED_EVENTS.name)
            con.execute("create temp table classified as " + sql, stage_params(
                sql, window, dedupe_horizon_hours=horizon // HOUR))
            con.execute("create temp view filtered_events as select * exclude "
                        "(exclusion_reason) from classified where exclusion_reason is null")
            for table in (MINUTE_AGGREGATE, MINUTE_LATENCY):
                sql = load_sql(table.schema, table.name)
                live.write(table, hour, con.sql(sql, params=stage_params(sql, window)))
            live.write(EVENT_OUTCOMES, hour, con.sql(OUTCOMES_SQL, params={"hour": hour}))
            events, rejected = con.sql(
                "select count(case when reject_reason is null then 1 end), "
                "count(reject_reason) from hour_lines"
            ).fetchall()[0]
            live.register(con, MINUTE_AGGREGATE, window)
            requests, failed = con.sql(
                "select cast(coalesce(sum(total_requests), 0) as bigint), "
                "cast(coalesce(sum(failed_requests), 0) as bigint) from minute_aggregate"
            ).fetchall()[0]
        else:
            # Nothing new: the same figures, as of this listing.
            previous = con.read_parquet(str(live.partition_path(REFRESHES, hour)))
            events, rejected, requests, failed = previous.project(
                "events, rejected, requests, failed").fetchall()[0]
        refresh = HourRefresh(hour, as_of, len(files), files_parsed, events, rejected,
                              requests, failed)
        live.write(REFRESHES, hour, con.sql(
            "select cast($hour as timestamp) as hour, cast($as_of as timestamp) as as_of, "
            "$files as files, $events as events, $rejected as rejected, "
            "$requests as requests, $failed as failed",
            params={"hour": hour, "as_of": as_of, "files": refresh.files, "events": events,
                    "rejected": rejected, "requests": requests, "failed": failed},
        ))
    return refresh


def _day_marker(lake: Lake, day: datetime) -> Path:
    return lake.live.root / _DAYS_DIR / f"{day:%Y-%m-%d}.json"


def _day_inputs(lake: Lake, day: datetime) -> str:
    """Which version of every minute partition of the day, exact and provisional, there is."""
    reads = {table: TimeWindow(day, day + DAY) for table in (MINUTE_AGGREGATE, MINUTE_LATENCY)}
    both = repr((lake.fingerprint(reads)[1:], lake.live.fingerprint(reads)[1:]))
    return hashlib.sha256(both.encode()).hexdigest()


def day_is_due(lake: Lake, day: datetime, now: datetime | None = None,
               every: timedelta = timedelta(0)) -> bool:
    """Today's tables are missing, or their inputs changed since they were made, `every` ago or
    more (by `now`)."""
    if not all(lake.live.partition_path(table, day).exists() for table in DAILY_TABLES):
        return True
    try:
        marker = json.loads(_day_marker(lake, day).read_text())
        refreshed = datetime.fromisoformat(marker["as_of"])
    except (FileNotFoundError, ValueError, KeyError):
        return True
    return (marker.get("inputs") != _day_inputs(lake, day)
            and (now is None or now - refreshed >= every))


def refresh_day(lake: Lake, day: datetime, as_of: datetime) -> None:
    """Today's published tables (and the validated rows behind them), provisional, from its
    exact hours and its open ones."""
    window = TimeWindow(day, day + DAY)
    inputs = _day_inputs(lake, day)
    with closing(compute_connection(BACKGROUND_THREADS)) as con:
        made: set[str] = set()
        for table in DAILY_CHAIN:
            for source in (source for source in table.inputs if source.name not in made):
                if source.grain is Grain.HOUR:
                    if not lake.register_current(con, source, window):
                        return  # no hour of the day has figures yet
                    made.add(source.name)
                elif lake.register(con, source, existing_only=True):
                    made.add(source.name)
            if not all(source.name in made for source in table.inputs):
                continue  # reference data the reference job has not loaded yet
            sql = load_sql(table.schema, table.name)
            con.execute(f"create temp table {table.name} as " + sql, stage_params(sql, window))
            made.add(table.name)
            if table in DAILY_TABLES:
                lake.live.write(table, day, con.table(table.name))
    write_bytes(_day_marker(lake, day), json.dumps(
        {"as_of": as_of.isoformat(), "inputs": inputs}).encode())


def remove_superseded(lake: Lake, now: datetime, horizon: timedelta) -> None:
    """Provisional partitions whose exact ones exist, or older than every open hour and its
    day: readers already ignore them; this keeps the folder small."""
    live = lake.live
    oldest_hour = _floor_hour(now) - HOUR * (LIVE_HOURS - 1)
    oldest = {Grain.HOUR: oldest_hour, Grain.DAY: oldest_hour.replace(hour=0)}
    for table in (*HOURLY_TABLES, REFRESHES, *DAILY_TABLES):
        exact_table = MINUTE_AGGREGATE if table is REFRESHES else table
        for folder in sorted(live.table_dir(table).glob("*")):
            start = partition_start(folder.name)
            if start is not None and (start < oldest[table.grain]
                                      or lake.partition_path(exact_table, start).exists()):
                shutil.rmtree(folder, ignore_errors=True)
    for digest in sorted((live.root / _DIGEST_DIR).glob("*.parquet")):
        start = partition_start(digest.name[:13])
        if start is not None and start < oldest_hour - horizon:
            digest.unlink(missing_ok=True)
    for marker in sorted((live.root / _DAYS_DIR).glob("*.json")):
        start = partition_start(marker.stem)
        if start is not None and start < oldest[Grain.DAY]:
            marker.unlink(missing_ok=True)
    for folder in sorted((live.root / _PARSED_DIR).glob("*")):
        start = partition_start(folder.name)
        if start is not None and (start < oldest_hour
                                  or lake.partition_path(MINUTE_AGGREGATE, start).exists()):
            shutil.rmtree(folder, ignore_errors=True)


def refresh(lake: Lake, settings: Settings, horizon: timedelta,
            now: datetime) -> list[HourRefresh]:
    """Bring every open hour, and the days they are in, up to date with the landing folder."""
    now = utc_naive(now)
    hours = open_hours(lake, now)
    refreshes = [refresh_hour(lake, settings, horizon, hour, now, hours) for hour in hours]
    for day in sorted({r.hour.replace(hour=0) for r in refreshes if r.files}):
        if day_is_due(lake, day, now, BACKGROUND_DAY_REFRESH):
            refresh_day(lake, day, now)
    remove_superseded(lake, now, horizon)
    return refreshes


def _provisional_refreshes(lake: Lake) -> dict[datetime, Path]:
    """The refresh row of each hour still provisional (no exact minute aggregate yet)."""
    return {start: path
            for path in sorted(lake.live.table_dir(REFRESHES).glob("*/data.parquet"))
            if (start := partition_start(path.parent.name)) is not None
            and not lake.partition_path(MINUTE_AGGREGATE, start).exists()}


def register_refreshes(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """`live.refreshes` on `con`: one row per hour still provisional, with the time its figures
    are as of."""
    paths = [str(path) for path in _provisional_refreshes(lake).values()]
    con.execute("create schema if not exists live")
    if paths:
        con.register("live_refresh_files", con.read_parquet(paths))
        con.execute("create or replace view live.refreshes as select * from live_refresh_files")
    else:
        con.execute(
            "create or replace view live.refreshes as select cast(null as timestamp) as hour, "
            "cast(null as timestamp) as as_of, 0 as files, 0 as events, 0 as rejected, "
            "0 as requests, 0 as failed where false"
        )


def provisional_hours(lake: Lake) -> dict[datetime, datetime]:
    """Each hour still provisional (refreshed, no exact minute aggregate yet) with the time its
    figures are as of."""
    hours = {}
    for start, path in _provisional_refreshes(lake).items():
        try:
            with closing(compute_connection(BACKGROUND_THREADS)) as con:
                ((as_of,),) = con.read_parquet(str(path)).project("as_of").fetchall()
        except (duckdb.Error, ValueError):
            continue  # being replaced, or torn: the next refresh writes it anew
        hours[start] = as_of
    return hours


def bring_days_up_to_date(lake: Lake, days: Iterable[date]) -> None:
    """Before a reader shows these days: those of them with provisional hours get today's
    tables remade from what their minutes are now, if those changed. A lake this process may
    not write to is read as it is."""
    provisional = provisional_hours(lake)
    for day in sorted(set(days)):
        start = datetime.combine(day, datetime.min.time())
        as_of = max((at for hour, at in provisional.items() if hour.date() == day), default=None)
        if as_of is not None and day_is_due(lake, start):
            try:
                refresh_day(lake, start, as_of)
            except OSError:
                return


def read_current(lake: Lake, query: Callable[[duckdb.DuckDBPyConnection], T],
                 days: Iterable[date] = ()) -> Reading[T]:
    """`query` over the lake as it stands now: the exact partitions, and the provisional ones in
    place of those not written yet; `live.refreshes` says which hours are provisional. The
    provisional tables of `days`, the days the query shows, are brought up to date first."""
    bring_days_up_to_date(lake, days)

    def with_refreshes(con: duckdb.DuckDBPyConnection) -> T:
        register_refreshes(con, lake)
        return query(con)

    return lake.read(with_refreshes, provisional=True)
