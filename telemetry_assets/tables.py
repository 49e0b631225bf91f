"""Every table of the lake: its stage (schema and Dagster group), name and partitioning."""

from telemetry_assets.lake import Grain, Table

SCENARIOS = Table("reference", "scenarios", Grain.SNAPSHOT)
CUSTOMERS = Table("reference", "customers", Grain.SNAPSHOT)
OPERATION_SCENARIOS = Table("reference", "operation_scenarios", Grain.SNAPSHOT)

RAW_EVENTS = Table("raw", "raw_events", Grain.HOUR)
REJECTED_EVENTS = Table("quarantine", "rejected_events", Grain.HOUR)

FILTERED_EVENTS = Table("staging", "filtered_events", Grain.HOUR)
EVENT_OUTCOMES = Table("staging", "event_outcomes", Grain.HOUR, written_by="filtered_events")

MINUTE_AGGREGATE = Table("aggregate", "minute_aggregate", Grain.HOUR)
MINUTE_LATENCY = Table("aggregate", "minute_latency", Grain.HOUR)
DAILY_LATENCY = Table("aggregate", "daily_latency", Grain.DAY)
DAILY_AGGREGATE = Table("aggregate", "daily_aggregate", Grain.DAY)

TRANSLATED = Table("curated", "translated", Grain.DAY)
VALIDATED = Table("curated", "validated", Grain.DAY)

SCENARIO_DAILY = Table("published", "scenario_daily", Grain.DAY)
SCENARIO_PARTNER_DAILY = Table("published", "scenario_partner_daily", Grain.DAY)
SCENARIO_MINUTE = Table("published", "scenario_minute", Grain.DAY)
PUBLISHED_TABLES = (SCENARIO_DAILY, SCENARIO_PARTNER_DAILY, SCENARIO_MINUTE)

QUALITY_SUMMARY = Table("quality", "quality_summary", Grain.DAY)

# One row per mood change and webhook, written by the service_mood sensor before it posts.
MOOD_NOTIFICATIONS = Table("alerts", "mood_notifications", Grain.SNAPSHOT,
                           written_by="service_mood")
