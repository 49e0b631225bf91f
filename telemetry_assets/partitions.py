"""Partitions: event stages by UTC hour, daily stages by UTC day, one start date."""

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

PARTITIONS_START = "2026-01-01"

hourly_partitions = HourlyPartitionsDefinition(start_date=f"{PARTITIONS_START}-00:00")
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START)
