"""Where data lives (SPEC §7): paths from TELEMETRY_* variables, read when asked for."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The first hour the pipeline has partitions for (naive UTC): events before it are never read.
FIRST_PARTITION = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Settings:
    """Filesystem locations of the landing files, reference CSVs, Parquet lake and warehouse."""

    data_dir: Path
    landing_dir: Path
    reference_dir: Path
    lake_dir: Path
    duckdb_path: Path
    # The objectives file (telemetry_core.slos); optional unless TELEMETRY_SLOS names it.
    slos_path: Path
    slos_required: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def setting(name: str, default: Path) -> Path:
            value = env.get(name, "").strip()
            return Path(value) if value else default

        data_dir = setting("TELEMETRY_DATA_DIR", Path("data"))
        reference_dir = setting("TELEMETRY_REFERENCE_DIR", data_dir / "reference")
        return cls(
            data_dir=data_dir,
            landing_dir=setting("TELEMETRY_LANDING_DIR", data_dir / "landing"),
            reference_dir=reference_dir,
            lake_dir=setting("TELEMETRY_LAKE_DIR", data_dir / "lake"),
            duckdb_path=setting("TELEMETRY_DUCKDB_PATH", data_dir / "warehouse.duckdb"),
            slos_path=setting("TELEMETRY_SLOS", reference_dir / "slos.yaml"),
            slos_required=bool(env.get("TELEMETRY_SLOS", "").strip()),
        )

    @property
    def slos_file(self) -> Path | None:
        """The objectives file to read: the configured one, or slos.yaml beside the reference
        CSVs when it exists (None: scenarios.csv's availability objectives alone)."""
        return self.slos_path if self.slos_required or self.slos_path.is_file() else None
