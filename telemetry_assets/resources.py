"""Where data lives: settings read from environment variables when the resource is built."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource

from telemetry_assets.lake import Lake


@dataclass(frozen=True)
class Settings:
    """Filesystem locations of the landing files, reference CSVs, Parquet lake and warehouse."""

    data_dir: Path
    landing_dir: Path
    reference_dir: Path
    lake_dir: Path
    duckdb_path: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def setting(name: str, default: Path) -> Path:
            value = env.get(name, "").strip()
            return Path(value) if value else default

        data_dir = setting("TELEMETRY_DATA_DIR", Path("data"))
        return cls(
            data_dir=data_dir,
            landing_dir=setting("TELEMETRY_LANDING_DIR", data_dir / "landing"),
            reference_dir=setting("TELEMETRY_REFERENCE_DIR", data_dir / "reference"),
            lake_dir=setting("TELEMETRY_LAKE_DIR", data_dir / "lake"),
            duckdb_path=setting("TELEMETRY_DUCKDB_PATH", data_dir / "warehouse.duckdb"),
        )


class TelemetryStore(ConfigurableResource):
    """The platform's storage; unset fields fall back to the TELEMETRY_* environment variables."""

    data_dir: str | None = None
    landing_dir: str | None = None
    reference_dir: str | None = None
    lake_dir: str | None = None
    duckdb_path: str | None = None

    @property
    def settings(self) -> Settings:
        overrides = {
            "TELEMETRY_DATA_DIR": self.data_dir,
            "TELEMETRY_LANDING_DIR": self.landing_dir,
            "TELEMETRY_REFERENCE_DIR": self.reference_dir,
            "TELEMETRY_LAKE_DIR": self.lake_dir,
            "TELEMETRY_DUCKDB_PATH": self.duckdb_path,
        }
        environ = dict(os.environ)
        environ.update({name: value for name, value in overrides.items() if value})
        return Settings.from_env(environ)

    @property
    def lake(self) -> Lake:
        settings = self.settings
        return Lake(settings.lake_dir.absolute(), settings.duckdb_path.absolute())
