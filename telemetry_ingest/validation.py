"""Adapter to the one event validator: which lines of a batch would the pipeline reject, and why.

The pipeline's raw stage owns the rules of SPEC §2 (`telemetry_assets.landing.
classify_event_lines`, the raw stage's own DuckDB SQL), so a line the receiver accepts is never
quarantined later and a line it rejects would have been. Until that function exists, the
stand-in below applies the same rules in Python; switching is replacing its body with the import.
"""

import json
from datetime import datetime
from typing import Any

_OBJECTS = (("data",), ("data", "baseData"), ("ext",), ("ext", "cloud"), ("ext", "sll"))

# Optional fields and the JSON type each must have when present (null counts as absent).
_STRING_FIELDS = (
    ("ext", "cloud", "environment"),
    ("ext", "cloud", "roleInstance"),
    ("ext", "sll", "libVer"),
    ("data", "cC"),
    ("data", "baseData", "operationName"),
    ("data", "baseData", "callerName"),
    ("data", "baseData", "requestType"),
    ("data", "scScenario"),
    ("data", "scPartner"),
    ("data", "testHeader"),
    ("data", "quoteIsTest"),
    ("data", "isTest"),
)


def classify_event_lines(lines: list[bytes]) -> list[str | None]:
    """The reject reason of each line, or None for a valid event (same order as `lines`)."""
    return [_reason(line) for line in lines]


def _reason(line: bytes) -> str | None:
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "malformed JSON"
    if not isinstance(event, dict):
        return "not a JSON object"
    for path in _OBJECTS:
        value = _get(event, path)
        if value is not None and not isinstance(value, dict):
            return f"{'.'.join(path)} is not an object"
    for path in (("id",), ("time",), ("data", "baseType")):
        value = _get(event, path)
        if value is None:
            return f"missing {'.'.join(path)}"
        if not isinstance(value, str):
            return f"{'.'.join(path)} is not a string"
        if not value.strip():
            return f"empty {'.'.join(path)}"
    try:
        datetime.fromisoformat(event["time"])
    except ValueError:
        return "time is not an ISO-8601 timestamp"
    for path in _STRING_FIELDS:
        value = _get(event, path)
        if value is not None and not isinstance(value, str):
            return f"{'.'.join(path)} is not a string"
    latency = _get(event, ("data", "baseData", "latencyMs"))
    if latency is not None:
        if isinstance(latency, bool) or not isinstance(latency, int | float):
            return "data.baseData.latencyMs is not a number"
        if latency < 0:
            return "data.baseData.latencyMs is negative"
    status = _get(event, ("data", "baseData", "requestStatus"))
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        return "data.baseData.requestStatus is not an integer"
    return None


def _get(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
