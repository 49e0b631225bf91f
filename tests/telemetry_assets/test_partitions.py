"""Windows and partition keys: naive times are UTC, nothing before the first partition."""

from datetime import UTC, datetime, timedelta

from dagster import TimeWindow

from telemetry_assets.partitions import (
    Grain,
    by_day,
    daily_partitions,
    hourly_partitions,
    keys_in,
    partition_starts,
    window_of_key,
)
from telemetry_core.sql import utc_aware, utc_naive

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def test_naive_and_aware_windows_give_the_same_keys():
    aware = keys_in(hourly_partitions, TimeWindow(DAY, DAY + timedelta(days=1)))
    naive = keys_in(hourly_partitions, TimeWindow(utc_naive(DAY), utc_naive(DAY) + timedelta(1)))
    assert aware == naive
    assert (aware[0], aware[-1], len(aware)) == ("2026-11-20-00:00", "2026-11-20-23:00", 24)


def test_keys_never_start_before_the_first_partition():
    first = hourly_partitions.start
    assert keys_in(daily_partitions, TimeWindow(first - timedelta(days=3), first)) == []
    clipped = keys_in(daily_partitions, TimeWindow(first - timedelta(days=3),
                                                   first + timedelta(days=2)))
    assert clipped == [f"{first:%Y-%m-%d}", f"{first + timedelta(days=1):%Y-%m-%d}"]


def test_window_of_an_hourly_or_daily_key_and_of_anything_else():
    assert window_of_key("2026-11-20-10:00") == TimeWindow(DAY.replace(hour=10),
                                                           DAY.replace(hour=11))
    assert window_of_key("2026-11-20") == TimeWindow(DAY, DAY + timedelta(days=1))
    assert window_of_key("yesterday") is None


def test_partition_starts_per_grain():
    window = TimeWindow(DAY, DAY + timedelta(days=2))
    assert partition_starts(Grain.SNAPSHOT, window) == [None]
    assert partition_starts(Grain.DAY, window) == [DAY, DAY + timedelta(days=1)]
    assert len(partition_starts(Grain.HOUR, window)) == 48


def test_utc_aware_is_the_inverse_of_utc_naive():
    assert utc_aware(datetime(2026, 11, 20, 10)) == DAY.replace(hour=10)
    assert utc_aware(utc_naive(DAY)) == DAY


def test_by_day_cuts_a_window_at_every_utc_midnight():
    def at(day: int, hour: int) -> datetime:
        return datetime(2026, 11, day, hour, tzinfo=UTC)

    assert by_day(TimeWindow(at(20, 10), at(22, 5))) == [
        TimeWindow(at(20, 10), at(21, 0)), TimeWindow(at(21, 0), at(22, 0)),
        TimeWindow(at(22, 0), at(22, 5)),
    ]
    assert by_day(TimeWindow(at(20, 0), at(21, 0))) == [TimeWindow(at(20, 0), at(21, 0))]
    assert by_day(TimeWindow(at(20, 3), at(20, 3))) == []
