"""Dagster notices this code location silences on purpose, each for a stated reason.

Imported first by definitions.py, so the filters are in place before any asset is declared.
"""

import warnings

from dagster import BetaWarning, PreviewWarning

# Single-run backfills of a range need BackfillPolicy, still beta in Dagster 1.13: it is used on
# purpose (a run per hour costs seconds each), so its notice is not a defect to report.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
# Likewise checks per partition (preview in 1.13): a check judges the partitions its run wrote.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)
# Dagster's own serializer reads this deprecated property of every schedule, whatever its use.
warnings.filterwarnings(
    "ignore", message="Property `ScheduleDefinition.environment_vars`", category=DeprecationWarning
)
