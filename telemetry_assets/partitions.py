"""Partitions: event stages by UTC hour, daily stages by UTC day, one start date; and every
conversion between a time window and partition keys, so no other module steps dates by hand."""

from datetime import datetime, timedelta
from enum import Enum

from dagster import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)

from telemetry_core.settings import FIRST_PARTITION
from telemetry_core.sql import utc_aware

PARTITIONS_START = f"{FIRST_PARTITION:%Y-%m-%d}"

hourly_partitions = HourlyPartitionsDefinition(start_date=f"{PARTITIONS_START}-00:00")
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START)
# The hours with provisional figures include the open one (SPEC §8).
open_hour_partitions = HourlyPartitionsDefinition(start_date=f"{PARTITIONS_START}-00:00",
                                                  end_offset=1)
# SLA statements by calendar month (keys like 2026-11); the open month is there too, for a
# preliminary statement.
monthly_partitions = MonthlyPartitionsDefinition(start_date=f"{FIRST_PARTITION:%Y-%m}",
                                                 fmt="%Y-%m", end_offset=1)


class Grain(Enum):
    """How a table is partitioned: one file per hour, per day, or one current snapshot."""

    HOUR = "hour"
    DAY = "day"
    SNAPSHOT = "snapshot"


def partitions_of(grain: Grain) -> TimeWindowPartitionsDefinition:
    return hourly_partitions if grain is Grain.HOUR else daily_partitions


def keys_in(partitions: TimeWindowPartitionsDefinition, window: TimeWindow) -> list[str]:
    """Keys of every partition starting in the window, none before the first partition; naive
    bounds are UTC."""
    start, end = max(utc_aware(window.start), partitions.start), utc_aware(window.end)
    if start >= end:
        return []
    return list(partitions.get_partition_keys_in_time_window(TimeWindow(start, end)))


def partition_starts(grain: Grain, window: TimeWindow | None) -> list[datetime | None]:
    """The start of every partition of this grain in `window` (one snapshot if unpartitioned)."""
    if grain is Grain.SNAPSHOT or window is None:
        return [None]
    partitions = partitions_of(grain)
    return [partitions.time_window_for_partition_key(key).start
            for key in keys_in(partitions, window)]


def key_of(grain: Grain, start: datetime) -> str:
    """The key of the partition of this grain that starts at `start` (naive UTC)."""
    partitions = partitions_of(grain)
    step = partitions.time_window_for_partition_key(partitions.get_first_partition_key())
    (key,) = keys_in(partitions, TimeWindow(start, start + (step.end - step.start)))
    return key


def windows_of(grain: Grain, keys: list[str]) -> list[tuple[str, TimeWindow]]:
    """Each key with its window."""
    partitions = partitions_of(grain)
    return [(key, partitions.time_window_for_partition_key(key)) for key in keys]


def window_of_key(key: str) -> TimeWindow | None:
    """The window of an hourly or daily key; None for anything else."""
    for partitions in (hourly_partitions, daily_partitions):
        try:
            return partitions.time_window_for_partition_key(key)
        except ValueError:
            continue
    return None


def shifted(window: TimeWindow, by) -> TimeWindow:
    """The same window moved by a timedelta (the week before, say)."""
    return TimeWindow(window.start + by, window.end + by)


def by_day(window: TimeWindow) -> list[TimeWindow]:
    """The window cut at every UTC midnight inside it, in order."""
    pieces, start = [], window.start
    while start < window.end:
        midnight = datetime.combine(start.date(), datetime.min.time(), start.tzinfo)
        end = min(window.end, midnight + timedelta(days=1))
        pieces.append(TimeWindow(start, end))
        start = end
    return pieces
