"""A small, dependency-free client that services use to emit one telemetry event per request.

client = TelemetryClient("http://127.0.0.1:8080", token="...", environment="prod")
with client.correlation(scenario="purchase-quote", partner="contoso"):
    with client.request("GetQuote", request_type="POST") as request:
        request.http_status = 200
"""

from telemetry_client.client import RequestScope, TelemetryClient, correlation
from telemetry_client.events import (
    STATUS_CALLER_ERROR,
    STATUS_SERVICE_ERROR,
    STATUS_SUCCESS,
    build_event,
    status_from_http,
)
from telemetry_client.transport import SenderStats

__all__ = [
    "STATUS_CALLER_ERROR",
    "STATUS_SERVICE_ERROR",
    "STATUS_SUCCESS",
    "RequestScope",
    "SenderStats",
    "TelemetryClient",
    "build_event",
    "correlation",
    "status_from_http",
]
