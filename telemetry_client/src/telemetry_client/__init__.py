"""A small, dependency-free client that services use to emit one telemetry event per request.

client = TelemetryClient("http://127.0.0.1:8080", token="...", environment="prod")
with client.correlation(scenario="purchase-quote", partner="contoso"):
    with client.request("GetQuote", request_type="POST") as request:
        request.http_status = 200

Web services take one line instead: `app.wsgi_app = WSGIMiddleware(app.wsgi_app, client)`
(Flask and any WSGI app) or `app.add_middleware(ASGIMiddleware, client=client)` (FastAPI,
Starlette and any ASGI app).
"""

from telemetry_client.client import (
    RequestScope,
    TelemetryClient,
    correlation,
    current_request,
)
from telemetry_client.config import ConfigurationError
from telemetry_client.events import (
    STATUS_CALLER_ERROR,
    STATUS_SERVICE_ERROR,
    STATUS_SUCCESS,
    build_event,
    status_from_http,
)
from telemetry_client.middleware import ASGIMiddleware, WSGIMiddleware
from telemetry_client.transport import SenderStats

__version__ = "1.0.0"

__all__ = [
    "STATUS_CALLER_ERROR",
    "STATUS_SERVICE_ERROR",
    "STATUS_SUCCESS",
    "ASGIMiddleware",
    "ConfigurationError",
    "RequestScope",
    "SenderStats",
    "TelemetryClient",
    "WSGIMiddleware",
    "__version__",
    "build_event",
    "correlation",
    "current_request",
    "status_from_http",
]
