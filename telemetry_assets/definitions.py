"""The code location: every asset, job and resource of the platform."""

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    in_process_executor,
    load_assets_from_modules,
)

from telemetry_assets import notices  # noqa: F401  (first: filters before any declaration)
from telemetry_assets.assets import ingest, present, publish, quality, reference, transform
from telemetry_assets.checks import audit_checks, contract_checks
from telemetry_assets.mood_sensor import service_mood_sensor
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.schedules import build_schedules
from telemetry_assets.sensors import build_sensors

all_assets = load_assets_from_modules([reference, ingest, transform, publish, quality, present])

hourly_job = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.groups("raw", "quarantine", "staging")
    | AssetSelection.assets("minute_aggregate", "minute_latency"),
    description="Landing files of an hour (or a range of hours) to minute aggregates.",
)
daily_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("curated", "published", "quality")
    | AssetSelection.assets("daily_latency", "daily_aggregate"),
    description="Minute aggregates of a day (or a range of days) to the published tables.",
)
dashboard_job = define_asset_job(
    "rebuild_dashboard",
    selection=AssetSelection.groups("present"),
    description="Rebuild the dashboard page from the published tables.",
)
reference_job = define_asset_job(
    "reference_data",
    selection=AssetSelection.groups("reference"),
    description="Reload the reference CSVs.",
)

defs = Definitions(
    assets=all_assets,
    asset_checks=[*audit_checks, *contract_checks],
    jobs=[reference_job, hourly_job, daily_job, dashboard_job],
    schedules=build_schedules(hourly_job, daily_job),
    sensors=[*build_sensors(hourly_job, daily_job), service_mood_sensor],
    resources={"store": TelemetryStore()},
    # One step's SQL already uses every core; a subprocess per step only adds seconds of start-up.
    executor=in_process_executor,
)
