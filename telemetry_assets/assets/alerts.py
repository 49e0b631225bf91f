"""Alerts: the routed notifications, recorded and sent by the service_mood sensor."""

from dagster import AssetKey, AssetSpec

from telemetry_assets.tables import ROUTE_DELIVERIES

ROUTED_DELIVERIES = AssetKey(ROUTE_DELIVERIES.name)

route_deliveries = AssetSpec(
    ROUTED_DELIVERIES,
    group_name="alerts",
    description="One row per mood change, route and sink of the routes file (TELEMETRY_ROUTES): "
    "queued, silenced, delivered, failed (retried) or given up; one materialization per "
    "evaluation that recorded or sent some, with the routes and what happened to each message.",
    kinds={"parquet"},
)
