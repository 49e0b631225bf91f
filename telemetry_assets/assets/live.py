"""Live: the open hours' provisional figures, refreshed by the service_mood sensor."""

from dagster import AssetKey, AssetSpec

from telemetry_assets.partitions import open_hour_partitions
from telemetry_assets.tables import CUSTOMERS, OPERATION_SCENARIOS, SCENARIOS

OPEN_HOUR = AssetKey("open_hour")

open_hour = AssetSpec(
    OPEN_HOUR,
    group_name="live",
    description="Provisional minute aggregates of the hours no exact run has read yet, the open "
    "one included, refreshed within a minute of landing by the service_mood sensor and replaced "
    "by the exact hourly run; one materialization per refresh that read new files.",
    partitions_def=open_hour_partitions,
    deps=[OPERATION_SCENARIOS.asset, SCENARIOS.asset, CUSTOMERS.asset],
    kinds={"parquet"},
)
