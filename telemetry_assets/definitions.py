"""The code location: every asset, check, job, schedule, sensor and resource of the platform."""

from dagster import Definitions, in_process_executor, load_assets_from_package_module

# notices first: its filters are in place before any declaration; concurrency_wait patches the
# slot wait of every step this process runs.
from telemetry_assets import assets, concurrency_wait, notices  # noqa: F401
from telemetry_assets.automation.late_data import late_landing_files
from telemetry_assets.automation.orphaned_runs import orphaned_runs
from telemetry_assets.automation.run_failure import run_failure_webhook
from telemetry_assets.automation.schedules import schedules
from telemetry_assets.automation.service_mood import service_mood_sensor
from telemetry_assets.checks.asset_checks import audit_checks, contract_checks
from telemetry_assets.jobs import JOBS
from telemetry_assets.resources import RESOURCES

defs = Definitions(
    assets=load_assets_from_package_module(assets, include_specs=True),
    asset_checks=[*audit_checks, *contract_checks],
    jobs=list(JOBS),
    schedules=schedules,
    sensors=[late_landing_files, run_failure_webhook, service_mood_sensor, orphaned_runs],
    resources=RESOURCES,
    # One step's SQL already uses every core; a subprocess per step only adds seconds of start-up.
    executor=in_process_executor,
)
