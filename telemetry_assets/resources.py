"""Every setting of the platform as a Dagster resource: where data lives, quality thresholds, the
mood policy, and when automation runs.

A field left unset falls back to its TELEMETRY_* environment variable, read when the value is
used (at launch, or at each tick), never at import: the UI shows the resources, a test injects
them, and a code server follows the environment it runs in.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from dagster import ConfigurableResource

from telemetry_assets.lake import Lake
from telemetry_assets.mood.burn_rates import MoodPolicy
from telemetry_core.routes import routes_path
from telemetry_core.settings import Settings
from telemetry_core.spark import DEFAULT_MASTER as DEFAULT_SPARK_MASTER


class _EnvironmentDefaults(ConfigurableResource):
    """Fields named in VARIABLES override their environment variable when set."""

    VARIABLES: ClassVar[Mapping[str, str]] = {}

    def environment(self) -> dict[str, str]:
        environ = dict(os.environ)
        for field, variable in self.VARIABLES.items():
            value: Any = getattr(self, field)
            if value is not None:
                environ[variable] = str(value)
        return environ


# SPEC §2: the same event id seen again within this long after a copy is the same event.
DEDUPE_HORIZON = timedelta(hours=24)


ENGINES = ("duckdb", "spark")

# Partitions of a run a stage computes at once: one machine's two cores stay busy with two.
PARTITIONS_AT_ONCE = 2


class TelemetryStore(_EnvironmentDefaults):
    """The platform's storage (landing files, reference CSVs, Parquet lake, warehouse), how long
    an event id stays one event (the dedupe horizon, in hours), and how many partitions of a run
    a stage computes at once."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        "data_dir": "TELEMETRY_DATA_DIR",
        "landing_dir": "TELEMETRY_LANDING_DIR",
        "reference_dir": "TELEMETRY_REFERENCE_DIR",
        "lake_dir": "TELEMETRY_LAKE_DIR",
        "duckdb_path": "TELEMETRY_DUCKDB_PATH",
        "dedupe_horizon_hours": "TELEMETRY_DEDUPE_HORIZON_HOURS",
        "partitions_at_once": "TELEMETRY_PARTITIONS_AT_ONCE",
        "engine": "TELEMETRY_ENGINE",
        "spark_master": "TELEMETRY_SPARK_MASTER",
    }

    data_dir: str | None = None
    landing_dir: str | None = None
    reference_dir: str | None = None
    lake_dir: str | None = None
    duckdb_path: str | None = None
    dedupe_horizon_hours: int | None = None
    partitions_at_once: int | None = None
    engine: str | None = None
    spark_master: str | None = None

    @property
    def engine_name(self) -> str:
        """Where the SQL stages run: `duckdb` (the default) or `spark`."""
        name = self.environment().get(self.VARIABLES["engine"], "").strip().lower() or "duckdb"
        if name not in ENGINES:
            raise ValueError(f"TELEMETRY_ENGINE={name!r}: one of {', '.join(ENGINES)}")
        return name

    @property
    def spark_master_url(self) -> str:
        return (self.environment().get(self.VARIABLES["spark_master"], "").strip()
                or DEFAULT_SPARK_MASTER)

    @property
    def at_once(self) -> int:
        """Partitions of a run a stage computes at once (at least one)."""
        return whole_number(self.environment(), self.VARIABLES["partitions_at_once"],
                            PARTITIONS_AT_ONCE, minimum=1)

    @property
    def dedupe_horizon(self) -> timedelta:
        return duration(self.environment(), self.VARIABLES["dedupe_horizon_hours"],
                        DEDUPE_HORIZON, timedelta(hours=1))

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.environment())

    @property
    def lake(self) -> Lake:
        settings = self.settings
        return Lake(settings.lake_dir.absolute(), settings.duckdb_path.absolute())


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the soft (WARN) expectations; the audits' SQL binds them by name."""

    max_quarantine_share: float = 0.01
    min_share_of_week_before: float = 0.5
    min_events_to_compare: int = 100
    busy_requests_per_minute: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "QualityThresholds":
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(**{
            name: kind(env.get(variable, "").strip() or getattr(defaults, name))
            for name, (variable, kind) in _QUALITY_VARIABLES.items()
        })


_QUALITY_VARIABLES = {
    "max_quarantine_share": ("TELEMETRY_MAX_QUARANTINE_SHARE", float),
    "min_share_of_week_before": ("TELEMETRY_MIN_SHARE_OF_WEEK_BEFORE", float),
    "min_events_to_compare": ("TELEMETRY_MIN_EVENTS_TO_COMPARE", int),
    "busy_requests_per_minute": ("TELEMETRY_BUSY_REQUESTS_PER_MINUTE", float),
}


class QualitySettings(_EnvironmentDefaults):
    """Thresholds of the soft data-quality expectations (quarantine share, traffic drop, busy
    scenario)."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        name: variable for name, (variable, _) in _QUALITY_VARIABLES.items()
    }

    max_quarantine_share: float | None = None
    min_share_of_week_before: float | None = None
    min_events_to_compare: int | None = None
    busy_requests_per_minute: float | None = None

    @property
    def thresholds(self) -> QualityThresholds:
        return QualityThresholds.from_env(self.environment())


class MoodSettings(_EnvironmentDefaults):
    """Burn-rate rules (`page:14.4:1h:5m,...`), the low-traffic minimum, the error-budget window
    shared by the mood and the dashboard, and the webhooks every mood change is posted to."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        "rules": "TELEMETRY_MOOD_RULES",
        "min_requests": "TELEMETRY_MOOD_MIN_REQUESTS",
        "budget_window": "TELEMETRY_MOOD_BUDGET_WINDOW",
        "webhooks": "TELEMETRY_MOOD_WEBHOOKS",
        "routes": "TELEMETRY_ROUTES",
    }

    rules: str | None = None
    min_requests: int | None = None
    budget_window: str | None = None
    webhooks: str | None = None
    routes: str | None = None

    @property
    def routes_file(self) -> Path | None:
        """The routes file (telemetry_core/routes.py), if one is configured."""
        return routes_path(self.environment())

    @property
    def policy(self) -> MoodPolicy:
        return MoodPolicy.from_env(self.environment())

    @property
    def webhook_urls(self) -> list[str]:
        return split_urls(self.environment().get(self.VARIABLES["webhooks"], ""))


def whole_number(environ: Mapping[str, str], name: str, default: int, minimum: int = 0,
                 unit: str = "") -> int:
    """A whole number (of `unit`, when named) in the variable `name`, or the default."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        count = int(value)
    except ValueError:
        of_unit = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a whole number{of_unit}, not {value!r}") from None
    if count < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {count}"
                         if minimum else f"{name} must not be negative, not {count}")
    return count


def duration(environ: Mapping[str, str], name: str, default: timedelta,
             unit: timedelta) -> timedelta:
    """A duration given as a whole number of `unit`s in the variable `name`, or the default."""
    return unit * whole_number(environ, name, default // unit, unit=_unit_name(unit))


def _unit_name(unit: timedelta) -> str:
    return "hours" if unit == timedelta(hours=1) else "minutes"


@dataclass(frozen=True)
class AutomationPolicy:
    """When scheduled and late-data runs happen, and where failed runs are reported."""

    hourly_delay: timedelta = timedelta(minutes=15)
    daily_lookback: timedelta = timedelta(days=3)
    late_data_lookback: timedelta = timedelta(hours=72)
    failure_webhooks: tuple[str, ...] = ()
    dagster_ui_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AutomationPolicy":
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            hourly_delay=duration(env, "TELEMETRY_HOURLY_DELAY_MINUTES", defaults.hourly_delay,
                                  timedelta(minutes=1)),
            daily_lookback=defaults.daily_lookback,
            late_data_lookback=duration(env, "TELEMETRY_LATE_DATA_LOOKBACK_HOURS",
                                        defaults.late_data_lookback, timedelta(hours=1)),
            failure_webhooks=tuple(split_urls(env.get("TELEMETRY_FAILURE_WEBHOOK_URLS", ""))),
            dagster_ui_url=env.get("TELEMETRY_DAGSTER_UI_URL", "").strip() or None,
        )


class AutomationSettings(_EnvironmentDefaults):
    """The hourly schedule's delay for late events, the late-data sensor's look-back, and the
    webhooks failed runs are posted to (with a link into the Dagster UI)."""

    VARIABLES: ClassVar[Mapping[str, str]] = {
        "hourly_delay_minutes": "TELEMETRY_HOURLY_DELAY_MINUTES",
        "late_data_lookback_hours": "TELEMETRY_LATE_DATA_LOOKBACK_HOURS",
        "failure_webhooks": "TELEMETRY_FAILURE_WEBHOOK_URLS",
        "dagster_ui_url": "TELEMETRY_DAGSTER_UI_URL",
    }

    hourly_delay_minutes: int | None = None
    late_data_lookback_hours: int | None = None
    failure_webhooks: str | None = None
    dagster_ui_url: str | None = None

    @property
    def policy(self) -> AutomationPolicy:
        return AutomationPolicy.from_env(self.environment())


def split_urls(value: str) -> list[str]:
    """Comma-separated URLs, blanks dropped."""
    return [url.strip() for url in value.split(",") if url.strip()]


RESOURCES = {
    "store": TelemetryStore(),
    "quality": QualitySettings(),
    "mood": MoodSettings(),
    "automation": AutomationSettings(),
}
