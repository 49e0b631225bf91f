"""Every table of the lake: its stage (schema and Dagster group), name, partitioning and inputs.

A SQL stage is this entry plus dbt_like_sql/<schema>/<name>.sql plus one `sql_asset(...)` line
in assets/<schema>.py; the inputs are the tables its SQL reads by name.
"""

from telemetry_assets.lake import Table
from telemetry_assets.partitions import Grain

SCENARIOS = Table("reference", "scenarios", Grain.SNAPSHOT)
CUSTOMERS = Table("reference", "customers", Grain.SNAPSHOT)
OPERATION_SCENARIOS = Table("reference", "operation_scenarios", Grain.SNAPSHOT)
# Every scenario's objectives (scenarios.csv's availability targets and slos.yaml's latency ones).
OBJECTIVES = Table("reference", "objectives", Grain.SNAPSHOT, (SCENARIOS, CUSTOMERS))

RAW_EVENTS = Table("raw", "raw_events", Grain.HOUR)
REJECTED_EVENTS = Table("quarantine", "rejected_events", Grain.HOUR)

FILTERED_EVENTS = Table("staging", "filtered_events", Grain.HOUR,
                        (RAW_EVENTS, OPERATION_SCENARIOS))
EVENT_OUTCOMES = Table("staging", "event_outcomes", Grain.HOUR, written_by="filtered_events")

MINUTE_AGGREGATE = Table("aggregate", "minute_aggregate", Grain.HOUR, (FILTERED_EVENTS,),
                         partition_column="minute")
MINUTE_LATENCY = Table("aggregate", "minute_latency", Grain.HOUR, (FILTERED_EVENTS,),
                       partition_column="minute")
DAILY_LATENCY = Table("aggregate", "daily_latency", Grain.DAY, (MINUTE_LATENCY,),
                      partition_column="date")
DAILY_AGGREGATE = Table("aggregate", "daily_aggregate", Grain.DAY, (MINUTE_AGGREGATE,),
                        partition_column="date")

TRANSLATED = Table("curated", "translated", Grain.DAY, (DAILY_AGGREGATE, SCENARIOS, CUSTOMERS),
                   partition_column="date")
VALIDATED = Table("curated", "validated", Grain.DAY, (TRANSLATED,), partition_column="date")
LATENCY_PERCENTILES = Table("curated", "latency_percentiles", Grain.DAY,
                            (VALIDATED, DAILY_LATENCY), partition_column="date")

SCENARIO_DAILY = Table("published", "scenario_daily", Grain.DAY,
                       (VALIDATED, LATENCY_PERCENTILES))
SCENARIO_PARTNER_DAILY = Table("published", "scenario_partner_daily", Grain.DAY,
                               (VALIDATED, LATENCY_PERCENTILES))
SCENARIO_MINUTE = Table("published", "scenario_minute", Grain.DAY,
                        (VALIDATED, MINUTE_AGGREGATE))
OBJECTIVE_DAILY = Table("published", "objective_daily", Grain.DAY,
                        (VALIDATED, DAILY_LATENCY, OBJECTIVES))
PUBLISHED_TABLES = (SCENARIO_DAILY, SCENARIO_PARTNER_DAILY, SCENARIO_MINUTE, OBJECTIVE_DAILY)
# What each day's latest publication was computed from (landing files and their line counts,
# each hour's minute-aggregate file), which the next one compares with (revisions.py).
DAY_INPUTS = Table("context", "day_inputs", Grain.DAY, written_by="scenario_daily")
# The figures a publication in progress will be compared with, until its revision is recorded:
# a publication killed in between is compared, when run again, with the figures before it.
REVISION_BASES = Table("context", "revision_bases", Grain.DAY, written_by="scenario_daily")

QUALITY_SUMMARY = Table("quality", "quality_summary", Grain.DAY,
                        (EVENT_OUTCOMES, REJECTED_EVENTS, VALIDATED))
# Files under the landing folder that no hour reads (file, reason), as of the last summary.
UNREAD_LANDING_FILES = Table("quality", "unread_landing_files", Grain.SNAPSHOT,
                             written_by="quality_summary")

# One row per mood change and webhook, written by the service_mood sensor before it posts.
MOOD_NOTIFICATIONS = Table("alerts", "mood_notifications", Grain.SNAPSHOT,
                           written_by="service_mood")
# One row per mood change, route and sink of the routes file, recorded before it is sent.
ROUTE_DELIVERIES = Table("alerts", "route_deliveries", Grain.SNAPSHOT,
                         written_by="service_mood")

# Recorded by people and processes, not computed by an asset of a job (telemetry_core/recorded.py).
# What people and the platform noted beside the figures (telemetry_core/annotations.py).
ANNOTATIONS = Table("context", "annotations", Grain.DAY)
# Batch jobs as a source (telemetry_ingest/batch.py): each run, and its console lines, filed
# under the day the run started.
JOB_RUNS = Table("context", "job_runs", Grain.DAY)
CONSOLE_LINES = Table("context", "console_lines", Grain.DAY)
# Why a published figure changed: per re-publication of a day and changed scenario.
REVISIONS = Table("context", "revisions", Grain.DAY)
# Silences of notifications (telemetry_core/silences.py), filed under the day they start.
SILENCES = Table("alerts", "silences", Grain.DAY)
RECORDED_TABLES = (ANNOTATIONS, JOB_RUNS, CONSOLE_LINES, REVISIONS, SILENCES)

# The tables the pipeline's assets write.
TABLES = tuple(value for value in tuple(globals().values())
               if isinstance(value, Table) and value not in RECORDED_TABLES)
