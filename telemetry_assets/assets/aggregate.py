"""Aggregate: minute rows and latency histograms per hour, summed to the day (SPEC §3)."""

from telemetry_assets.stage import DAILY_FRESHNESS, HOURLY_FRESHNESS, sql_asset
from telemetry_assets.tables import DAILY_AGGREGATE, DAILY_LATENCY, MINUTE_AGGREGATE, MINUTE_LATENCY

minute_aggregate = sql_asset(
    MINUTE_AGGREGATE,
    "Requests, successes, failures and latency totals per scenario, partner, minute, request "
    "type and cloud environment.",
    freshness_policy=HOURLY_FRESHNESS,
)
minute_latency = sql_asset(
    MINUTE_LATENCY,
    "Mergeable latency histogram (log-spaced buckets, growth 1.02) at the minute_aggregate "
    "grain; one row per bucket.",
    freshness_policy=HOURLY_FRESHNESS,
)
daily_latency = sql_asset(
    DAILY_LATENCY,
    "The minute latency histograms merged per day at the daily_aggregate grain.",
    freshness_policy=DAILY_FRESHNESS,
)
daily_aggregate = sql_asset(
    DAILY_AGGREGATE,
    "Daily requests, successes, failures and request-weighted average latency per scenario, "
    "partner, request type and cloud environment, built from minute rows.",
    freshness_policy=DAILY_FRESHNESS,
)
