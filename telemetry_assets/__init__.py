"""Service availability platform: Dagster assets over DuckDB and Parquet.

`defs` is loaded on first access, so that importing a light module of the package (the
landing-file reader the HTTP receiver uses, say) does not import Dagster and every asset.
"""

from typing import Any

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from telemetry_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'telemetry_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
