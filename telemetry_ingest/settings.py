"""Receiver and consumer settings, read from environment variables when a server is built."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from telemetry_core.settings import Settings

DEFAULT_MAX_BODY_BYTES = 16 << 20
# Client clocks drift: an event a few minutes ahead is real, hours ahead is a broken clock.
DEFAULT_MAX_FUTURE = timedelta(minutes=15)
# A request takes several times its body in memory while it is decoded and judged.
DEFAULT_MAX_INFLIGHT_BYTES = 4 * DEFAULT_MAX_BODY_BYTES
DEFAULT_BODY_TIMEOUT_S = 30.0
# Headers are small: a client still sending them after this long is stalling (slowloris).
DEFAULT_HEADER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class IngestSettings:
    """Where accepted events land, who may send them, and how large one request may be."""

    landing_dir: Path
    tokens: frozenset[str]
    # Where POST /v1/annotations records annotations, and the scenarios it checks scopes against.
    lake_dir: Path | None = None
    reference_dir: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_future: timedelta = DEFAULT_MAX_FUTURE
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    # The event routes' queues (telemetry_ingest/forward.py): hard links to landing files, so
    # best on the landing folder's file system (elsewhere each queued file is a copy).
    forward_dir: Path = Path("data") / "forward"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "IngestSettings":
        env = os.environ if environ is None else environ
        tokens = frozenset(
            token.strip() for token in env.get("TELEMETRY_INGEST_TOKENS", "").split(",")
        ) - {""}
        limit = env.get("TELEMETRY_INGEST_MAX_BODY_BYTES", "").strip()
        ahead = env.get("TELEMETRY_INGEST_MAX_FUTURE_MINUTES", "").strip()
        in_flight = env.get("TELEMETRY_INGEST_MAX_INFLIGHT_BYTES", "").strip()
        body_timeout = env.get("TELEMETRY_INGEST_BODY_TIMEOUT_SECONDS", "").strip()
        header_timeout = env.get("TELEMETRY_INGEST_HEADER_TIMEOUT_SECONDS", "").strip()
        forward_dir = env.get("TELEMETRY_FORWARD_DIR", "").strip()
        platform = Settings.from_env(env)
        return cls(
            landing_dir=platform.landing_dir,
            tokens=tokens,
            lake_dir=platform.lake_dir,
            reference_dir=platform.reference_dir,
            max_body_bytes=int(limit) if limit else DEFAULT_MAX_BODY_BYTES,
            max_future=timedelta(minutes=int(ahead)) if ahead else DEFAULT_MAX_FUTURE,
            max_inflight_bytes=int(in_flight) if in_flight else DEFAULT_MAX_INFLIGHT_BYTES,
            body_timeout_s=float(body_timeout) if body_timeout else DEFAULT_BODY_TIMEOUT_S,
            header_timeout_s=float(header_timeout) if header_timeout else DEFAULT_HEADER_TIMEOUT_S,
            forward_dir=Path(forward_dir) if forward_dir else platform.data_dir / "forward",
        )
