"""The only SQL plumbing: load a stage's SQL file, bind its partition window, open an engine."""

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from dagster import TimeWindow

SQL_DIR = Path(__file__).resolve().parent.parent / "dbt_like_sql"


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


def utc_aware(moment: datetime) -> datetime:
    """The same instant as an aware UTC datetime, as Dagster's partitions compare them; naive
    datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def window_params(window: "TimeWindow") -> dict[str, datetime]:
    """The half-open window [start, end) as the $window_start and $window_end parameters."""
    return {"window_start": utc_naive(window.start), "window_end": utc_naive(window.end)}


def compute_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory engine: stages never hold a lock on the shared warehouse file."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    return con
