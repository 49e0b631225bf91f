"""Curated: aggregates joined with the reference data, validated, and their percentiles."""

from telemetry_assets.stage import sql_asset
from telemetry_assets.tables import LATENCY_PERCENTILES, TRANSLATED, VALIDATED

translated = sql_asset(
    TRANSLATED,
    "daily_aggregate with scenario names, services, SLO targets and partner names and tiers; "
    "unknown ids kept and flagged.",
)
validated = sql_asset(
    VALIDATED,
    "translated rows with availability and the reason a row is held back from publication.",
)
latency_percentiles = sql_asset(
    LATENCY_PERCENTILES,
    "p50/p95/p99 latency per day from merged histograms: per daily_aggregate row, and per "
    "published scenario and scenario-partner.",
)
