"""Partitions: event stages by UTC hour, daily stages by UTC day, one start date."""

import warnings

from dagster import (
    BetaWarning,
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    PreviewWarning,
)

# Single-run backfills of a range need BackfillPolicy, still beta in Dagster 1.13; it is used on
# purpose (a run per hour costs seconds each), so its beta notice is not a defect to report.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
# Likewise checks per partition (preview in 1.13): a check judges the partitions its run wrote.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)

PARTITIONS_START = "2026-01-01"

hourly_partitions = HourlyPartitionsDefinition(start_date=f"{PARTITIONS_START}-00:00")
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START)
