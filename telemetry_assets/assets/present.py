"""Presentation: the availability dashboard, rebuilt whenever the published tables change."""

from dataclasses import replace
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from telemetry_assets import markdown
from telemetry_assets.dashboard.data import gather
from telemetry_assets.dashboard.page import render
from telemetry_assets.resources import MoodSettings, TelemetryStore
from telemetry_assets.tables import PUBLISHED_TABLES
from telemetry_core.durable import write_bytes
from telemetry_core.settings import Settings


def dashboard_path(settings: Settings) -> Path:
    return settings.data_dir / "dashboard" / "index.html"


@asset(
    group_name="present",
    deps=[table.asset for table in PUBLISHED_TABLES],
    kinds={"html"},
    # Unpartitioned below daily partitions: old days that were never run are not "missing data"
    # that should hold the page back.
    automation_condition=AutomationCondition.eager().without(
        ~AutomationCondition.any_deps_missing()
    ),
)
def dashboard(context: AssetExecutionContext, store: TelemetryStore,
              mood: MoodSettings) -> MaterializeResult:
    """The latest published day's availability dashboard as one self-contained HTML file."""
    policy = mood.policy
    reading = store.lake.read(lambda con: gather(con, None, policy))
    data = replace(reading.value, damage=reading.damage)
    for damage in reading.damage:
        context.log.warning(f"the dashboard leaves out a damaged file: {damage}")
    path = dashboard_path(store.settings).absolute()
    # Readers (a browser, a file server) never see a half-written page.
    write_bytes(path, render(data).encode())
    context.log.info(f"dashboard of {data.selection.day} written to {path}")
    metadata = {
        "path": MetadataValue.path(str(path)),
        "day": str(data.selection.day),
        "scenarios": len([row for row in data.scenarios if row["day_requests"] is not None]),
        "incidents": len(data.incidents),
        "serve": "telemetry dashboard --port 8050, then http://127.0.0.1:8050/",
    }
    if data.mood is not None:
        metadata["mood_as_of"] = f"{data.mood.as_of:%Y-%m-%d %H:%M} UTC"
        metadata["mood"] = markdown.table(
            [(m.scenario_id, m.state, _figure(m.windows.get("1h")),
              _figure(m.windows.get("6h")), _percent(m.budget_remaining_pct))
             for m in data.mood.worst_first()[:10]],
            ["scenario", "state", "burn 1h", "burn 6h", "budget left %"],
        )
        metadata.update({f"scenarios_{state}": count
                         for state, count in data.mood.counts().items()})
    return MaterializeResult(metadata=metadata)


def _figure(window) -> str:
    return "-" if window is None or window.burn_rate is None else f"{window.burn_rate:.2f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
