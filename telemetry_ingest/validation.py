"""Adapter to the one event validator: which lines of a batch would the pipeline reject, and why.

The pipeline's raw stage owns the rules of SPEC §2 (its DuckDB SQL in
dbt_like_sql/raw/raw_events.sql, to be exposed as `telemetry_assets.landing.
classify_event_lines`), so a line the receiver accepts is never quarantined later and a line
it rejects would have been. Until that function exists, the stand-in below applies the same
rules, in the same order and with the same reasons; switching is replacing `classify_event_lines`
here with an import of the pipeline's.
"""

import json
import re
from typing import Any

from telemetry_ingest.writer import parse_event_time

# Optional text fields, in the order the raw stage checks them; null counts as absent.
_TEXT_FIELDS = (
    ("data", "cC"),
    ("data", "scScenario"),
    ("data", "scPartner"),
    ("data", "testHeader"),
    ("data", "quoteIsTest"),
    ("data", "isTest"),
    ("data", "baseData", "operationName"),
    ("data", "baseData", "callerName"),
    ("data", "baseData", "requestType"),
    ("ext", "cloud", "environment"),
    ("ext", "cloud", "roleInstance"),
    ("ext", "sll", "libVer"),
)
# What DuckDB casts to a timestamp: extended ISO-8601 date, optional time and offset.
_ISO_TIME = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*"
)
_INT32_MAX = 2_147_483_647


def classify_event_lines(lines: list[bytes]) -> list[str | None]:
    """The reject reason of each line, or None for a valid event (same order as `lines`)."""
    return [_reason(line) for line in lines]


def _reason(line: bytes) -> str | None:
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return "line is not valid UTF-8"
    try:
        event = json.loads(text)
    except ValueError:
        return "not valid JSON"
    if not isinstance(event, dict):
        return "JSON value is not an object"
    for path in (("id",), ("time",), ("data", "baseType")):
        name = ".".join(path)
        value = _get(event, path)
        if value is None:
            return f"missing required field {name}"
        if not isinstance(value, str):
            return f"{name} must be a string"
        if name == "id" and not value.strip():
            return "id is empty"
        if name == "time" and (not _ISO_TIME.fullmatch(value) or parse_event_time(value) is None):
            return "time is not an ISO-8601 timestamp"
    for path in _TEXT_FIELDS:
        value = _get(event, path)
        if value is not None and not isinstance(value, str):
            return f"{'.'.join(path)} must be a string"
    latency = _get(event, ("data", "baseData", "latencyMs"))
    if latency is not None:
        if not _is_number(latency):
            return "data.baseData.latencyMs must be a number"
        if latency < 0:
            return "data.baseData.latencyMs must not be negative"
    status = _get(event, ("data", "baseData", "requestStatus"))
    if status is not None and (
        not _is_number(status) or status != int(status) or abs(status) > _INT32_MAX
    ):
        return "data.baseData.requestStatus must be an integer"
    return None


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value == value


def _get(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    # Like the raw stage's JSON paths: a non-object on the way makes the field absent.
    value: Any = event
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
