"""The only SQL plumbing: load a stage's SQL file, bind its partition window, open an engine."""

import os
import threading
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from dagster import TimeWindow

SQL_DIR = Path(__file__).resolve().parent.parent / "dbt_like_sql"

# The latency summary's bucket growth factor g: percentiles are within (g-1)/(g+1) ≈ 0.99 %.
LATENCY_GROWTH = 1.02
# Bucket index for a latency of exactly 0 ms (ln 0 is undefined); below every real bucket.
ZERO_LATENCY_BUCKET = -1_000_000
# A bucket's representative latency, as dbt_like_sql/aggregate/daily_latency.sql states it (a
# SQL file cannot import it): for [g^i, g^(i+1)) the point 2g^(i+1)/(1+g), 0 for the zero bucket.
# A latency objective judges a bucket good when this is at or under its threshold.
BUCKET_LATENCY_SQL = """case when latency_bucket = $zero_bucket then 0.0
    else 2 * power(cast($latency_growth as double), latency_bucket + 1)
        / (1 + cast($latency_growth as double)) end"""


@cache
def load_sql(stage: str, name: str) -> str:
    """The SELECT in dbt_like_sql/<stage>/<name>.sql."""
    return (SQL_DIR / stage / f"{name}.sql").read_text()


def utc_naive(moment: datetime) -> datetime:
    """Every timestamp in the warehouse is naive UTC; aware datetimes are converted, naive ones
    are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def ceil_minute(moment: datetime) -> datetime:
    """The first whole minute at or after `moment`."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def utc_aware(moment: datetime) -> datetime:
    """The same instant as an aware UTC datetime, as Dagster's partitions compare them; naive
    datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def window_params(window: "TimeWindow") -> dict[str, datetime]:
    """The half-open window [start, end) as the $window_start and $window_end parameters."""
    return {"window_start": utc_naive(window.start), "window_end": utc_naive(window.end)}


_engines: dict[int | None, tuple[int, duckdb.DuckDBPyConnection]] = {}
_engine_lock = threading.Lock()
# Work that runs beside everything else (the live refresh in a sensor) gets one thread: it is
# small, a quarter of its CPU went to coordinating two threads, and runs keep the cores.
BACKGROUND_THREADS = 1


def compute_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A private session of the process's in-memory engine (of one that uses `threads`
    threads, when given): stages never hold a lock on the shared warehouse file.

    Opening an in-memory database costs ~30 ms, more than the SQL of a quiet hour, and a range
    run opens several per partition; a session (cursor) of one already open costs ~0.5 ms.
    Sessions share nothing a stage names: registered objects, temporary tables and temporary
    views are private to the session and go with it. Persistent objects are not: create none.
    """
    with _engine_lock:
        engine = _engines.get(threads)
        # A forked child must not share its parent's engine.
        if engine is None or engine[0] != os.getpid():
            connection = duckdb.connect(":memory:")
            connection.execute("set TimeZone = 'UTC'")
            if threads is not None:
                connection.execute(f"set threads = {int(threads)}")
            engine = _engines[threads] = (os.getpid(), connection)
        con = engine[1].cursor()
    con.execute("set TimeZone = 'UTC'")
    return con
