"""Service availability platform: Dagster assets over DuckDB and Parquet."""

from telemetry_assets.definitions import defs

__all__ = ["defs"]
