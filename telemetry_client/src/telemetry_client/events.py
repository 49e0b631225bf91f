"""The event wire format (SPEC §2): one place that knows field names and status codes.

The HTTP receiver's OpenTelemetry mapping builds its events here too, so a span and a
client-recorded request come out identical in shape.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

BASE_TYPE = "Ms.Qos.IncomingServiceRequest"
# Major version 5 is what tells the pipeline to read scenario and partner from data.cC
# rather than the legacy data.scScenario / data.scPartner fields (SPEC §3).
LIB_VERSION = "5.0.0"

SCENARIO_KEY = "ms.b.tel.scenario"
PARTNER_KEY = "ms.b.tel.partner"

# data.baseData.requestStatus: the pipeline counts a request as successful when the status is
# present and below 5, so a caller's mistake (4xx) does not count against the service.
STATUS_SUCCESS = 3
STATUS_CALLER_ERROR = 4
STATUS_SERVICE_ERROR = 6

# ';' and ',' separate pairs and '=' separates key from value in data.cC; a value carrying
# one of them would be read back as a different scenario or partner.
_CONTEXT_SEPARATORS = re.compile(r"[;,=]")


def status_from_http(code: int) -> int:
    """requestStatus for an HTTP response code: below 500 is success, 500 and above failure."""
    if code >= 500:
        return STATUS_SERVICE_ERROR
    if code >= 400:
        return STATUS_CALLER_ERROR
    return STATUS_SUCCESS


def correlation_context(scenario: str | None, partner: str | None) -> str:
    """data.cC for a scenario and partner, e.g. `ms.b.tel.scenario=quote;ms.b.tel.partner=acme`."""
    pairs = []
    for key, value in ((SCENARIO_KEY, scenario), (PARTNER_KEY, partner)):
        if value:
            pairs.append(f"{key}={_CONTEXT_SEPARATORS.sub('_', value.strip())}")
    return ";".join(pairs)


def correlation_from_baggage(header: str | None) -> tuple[str | None, str | None]:
    """Scenario and partner from a W3C `baggage` header's `ms.b.tel.*` entries.

    `baggage: ms.b.tel.scenario=checkout.quote,ms.b.tel.partner=contoso;prop` gives
    ("checkout.quote", "contoso"): members are separated by commas, properties after a `;`
    are ignored, values are percent-decoded.
    """
    found: dict[str, str] = {}
    for member in (header or "").split(","):
        key, sep, value = member.split(";", 1)[0].partition("=")
        key = key.strip().lower()
        if sep and key in (SCENARIO_KEY, PARTNER_KEY):
            found[key] = unquote(value.strip())
    return found.get(SCENARIO_KEY) or None, found.get(PARTNER_KEY) or None


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, the form SPEC §2 shows."""
    utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def time_from_epoch_ns(epoch_ns: int) -> str:
    return format_time(datetime.fromtimestamp(epoch_ns / 1e9, timezone.utc))


def build_event(
    *,
    event_id: str,
    time: str,
    operation: str,
    latency_ms: float,
    request_status: int | None,
    request_type: str = "",
    caller: str = "",
    scenario: str | None = None,
    partner: str | None = None,
    environment: str = "",
    role: str = "",
    role_instance: str = "",
    is_test: bool = False,
) -> dict[str, Any]:
    """One request event with every field SPEC §2 names; a missing status stays missing.

    A negative or NaN latency is written as 0; an infinite one is refused (ValueError), as
    JSON cannot carry it.
    """
    if latency_ms == math.inf:
        raise ValueError("latency_ms must be finite")
    base_data: dict[str, Any] = {
        "operationName": operation,
        "callerName": caller,
        "requestType": request_type,
        "latencyMs": max(0.0, round(latency_ms, 3)),
    }
    if request_status is not None:
        base_data["requestStatus"] = request_status
    data: dict[str, Any] = {
        "baseType": BASE_TYPE,
        "cC": correlation_context(scenario, partner),
        "baseData": base_data,
    }
    if is_test:
        data["isTest"] = "true"
    return {
        "id": event_id,
        "time": time,
        "data": data,
        "ext": {
            "cloud": {"environment": environment, "role": role, "roleInstance": role_instance},
            "sll": {"libVer": LIB_VERSION},
        },
    }
