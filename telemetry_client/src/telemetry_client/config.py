"""Client settings: an argument wins, then its environment variable, then the default.

One table, so the README, the code and the JavaScript client name the same variables.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Callable

# option -> (environment variable, default); the README's table is this one.
VARIABLES = {
    "endpoint": ("TELEMETRY_CLIENT_ENDPOINT", "http://127.0.0.1:8080"),
    "token": ("TELEMETRY_CLIENT_TOKEN", None),
    "environment": ("TELEMETRY_CLIENT_ENVIRONMENT", ""),
    "role": ("TELEMETRY_CLIENT_ROLE", ""),
    "role_instance": ("TELEMETRY_CLIENT_ROLE_INSTANCE", None),
    "batch_size": ("TELEMETRY_CLIENT_BATCH_SIZE", 500),
    "flush_interval": ("TELEMETRY_CLIENT_FLUSH_INTERVAL", 1.0),
    "max_queue": ("TELEMETRY_CLIENT_MAX_QUEUE", 10_000),
    "timeout": ("TELEMETRY_CLIENT_TIMEOUT", 10.0),
    "exit_flush_timeout": ("TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT", 5.0),
}


class ConfigurationError(ValueError):
    """A setting the client cannot run with; raised when the client is created, never later."""


@dataclass(frozen=True)
class ClientSettings:
    endpoint: str
    token: str
    environment: str
    role: str
    role_instance: str
    batch_size: int
    flush_interval: float
    max_queue: int
    timeout: float
    exit_flush_timeout: float

    @classmethod
    def resolve(cls, **given: object) -> ClientSettings:
        """Settings from the arguments given (None = not given), then the environment."""
        values = {name: _value(name, given.get(name)) for name in VARIABLES}
        if not values["token"]:
            raise ConfigurationError(
                "the receiver's token is required: pass token= or set TELEMETRY_CLIENT_TOKEN"
            )
        if values["role_instance"] is None:
            values["role_instance"] = socket.gethostname()
        return cls(**values)  # type: ignore[arg-type]

    @property
    def events_url(self) -> str:
        url = self.endpoint.rstrip("/")
        return url if url.endswith("/v1/events") else url + "/v1/events"


def _value(name: str, given: object) -> object:
    variable, default = VARIABLES[name]
    text = os.environ.get(variable, "").strip()
    if given is None and not text:
        return default
    parse = _PARSERS.get(name, str)
    raw = given if given is not None else text
    try:
        value = parse(raw)
    except (TypeError, ValueError):
        source = f"{name}=" if given is not None else variable
        raise ConfigurationError(f"{source} must be {_KINDS[parse]}, got {raw!r}") from None
    if parse is not str and not value > 0:  # also refuses NaN
        source = f"{name}=" if given is not None else variable
        raise ConfigurationError(f"{source} must be greater than 0, got {raw!r}")
    return value


def _whole(raw: object) -> int:
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(raw)  # type: ignore[call-overload]


_PARSERS: dict[str, Callable[[object], object]] = {
    "batch_size": _whole,
    "max_queue": _whole,
    "flush_interval": float,
    "timeout": float,
    "exit_flush_timeout": float,
}
_KINDS = {_whole: "a whole number", float: "a number of seconds", str: "text"}
