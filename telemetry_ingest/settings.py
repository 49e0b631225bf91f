"""Receiver and consumer settings, read from environment variables when a server is built."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from telemetry_core.settings import Settings

DEFAULT_MAX_BODY_BYTES = 16 << 20


@dataclass(frozen=True)
class IngestSettings:
    """Where accepted events land, who may send them, and how large one request may be."""

    landing_dir: Path
    tokens: frozenset[str]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "IngestSettings":
        env = os.environ if environ is None else environ
        tokens = frozenset(
            token.strip() for token in env.get("TELEMETRY_INGEST_TOKENS", "").split(",")
        ) - {""}
        limit = env.get("TELEMETRY_INGEST_MAX_BODY_BYTES", "").strip()
        return cls(
            landing_dir=Settings.from_env(env).landing_dir,
            tokens=tokens,
            max_body_bytes=int(limit) if limit else DEFAULT_MAX_BODY_BYTES,
        )
