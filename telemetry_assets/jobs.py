"""The jobs, their names, and the run tags and metadata keys the platform both writes and reads:
stated here once."""

from dagster import AssetSelection, DagsterRunStatus, define_asset_job

from telemetry_assets.partitions import Grain
from telemetry_assets.tables import TABLES

HOURLY_JOB = "hourly_pipeline"
DAILY_JOB = "daily_pipeline"
DASHBOARD_JOB = "rebuild_dashboard"
REFERENCE_JOB = "reference_data"
SLA_JOB = "issue_sla_statements"

# Dagster's own tags.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
RUN_KEY_TAG = "dagster/run_key"
# Ours: what launched a run (schedule, late data) and who (the CLI).
TRIGGER_TAG = "telemetry/trigger"
LAUNCHED_BY_TAG = "telemetry/launched_by"
# The process that executes a run in-process, so that a run whose process died can be told apart.
HOST_TAG = "telemetry/host"
PID_TAG = "telemetry/pid"
# Runs that have not finished. A queued run has no process yet, so only the others can have lost
# theirs (see automation/orphaned_runs.py).
UNFINISHED_STATUSES = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED,
                       DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                       DagsterRunStatus.CANCELING)
LAUNCHED_STATUSES = tuple(status for status in UNFINISHED_STATUSES
                          if status is not DagsterRunStatus.QUEUED)
# Materialization metadata of filtered_events: later hours the run made stale (a copy of an event
# they kept was seen earlier), which the late-data sensor re-runs.
LATER_HOURS_TO_RERUN = "later_hours_to_rerun"
# Materialization metadata of sla_statements: each partner's statement of the run (version,
# issued or unchanged, files), which `telemetry statement` prints.
STATEMENTS_METADATA = "statement_list"


def _assets_of(grain: Grain) -> AssetSelection:
    return AssetSelection.assets(*sorted({table.asset for table in TABLES
                                          if table.grain is grain}))


hourly_job = define_asset_job(
    HOURLY_JOB,
    selection=_assets_of(Grain.HOUR),
    description="Landing files of an hour (or a range of hours) to minute aggregates.",
)
daily_job = define_asset_job(
    DAILY_JOB,
    selection=_assets_of(Grain.DAY),
    description="Minute aggregates of a day (or a range of days) to the published tables.",
)
dashboard_job = define_asset_job(
    DASHBOARD_JOB,
    selection=AssetSelection.groups("present"),
    description="Rebuild the dashboard page from the published tables.",
)
reference_job = define_asset_job(
    REFERENCE_JOB,
    selection=AssetSelection.groups("reference"),
    description="Reload the reference CSVs.",
)
sla_job = define_asset_job(
    SLA_JOB,
    selection=AssetSelection.groups("sla"),
    description="Issue a month's partner SLA statements (new versions where figures changed).",
)
JOBS = (reference_job, hourly_job, daily_job, dashboard_job, sla_job)
