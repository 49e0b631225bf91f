"""OTLP/HTTP traces (JSON or protobuf) to request events: one event per server span.

Both encodings are read into the same small span view, so the mapping exists once.
Mapping: duration → latency, `http.response.status_code` → request status (below 500
success), `http.route` or the span name → operation, resource attributes → environment and
role instance, `ms.b.tel.scenario` / `ms.b.tel.partner` attributes → correlation context
(OpenTelemetry's baggage span processors copy baggage entries onto span attributes under the
same keys).
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from telemetry_client.events import (
    PARTNER_KEY,
    SCENARIO_KEY,
    STATUS_SERVICE_ERROR,
    STATUS_SUCCESS,
    build_event,
    status_from_http,
    time_from_epoch_ns,
)

from telemetry_ingest.payload import PayloadError

SPAN_KIND_SERVER = 2
STATUS_CODE_ERROR = 2

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SpanView:
    trace_id: str
    span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class MappedSpans:
    lines: list[bytes]
    ignored: int
    # Server spans that cannot be a request event, each with the reason.
    rejected: list[str]


def map_spans(spans: Iterable[SpanView]) -> MappedSpans:
    """Event lines for the server spans; every other span is only counted."""
    lines: list[bytes] = []
    rejected: list[str] = []
    ignored = 0
    for span in spans:
        if span.kind != SPAN_KIND_SERVER:
            ignored += 1
            continue
        if not span.trace_id or not span.span_id:
            # The event id is made of both: without them, unrelated spans would share one id
            # and be deduplicated into one request.
            rejected.append("span has no traceId or spanId")
            continue
        try:
            event = span_event(span)
        except (OverflowError, OSError, ValueError):
            rejected.append(f"startTimeUnixNano {span.start_ns} is not a representable time")
            continue
        lines.append(_ENCODER.encode(event).encode())
    return MappedSpans(lines, ignored, rejected)


def span_event(span: SpanView) -> dict[str, Any]:
    attributes, resource = span.attributes, span.resource
    http_status = _integer(_first(attributes, "http.response.status_code", "http.status_code"))
    if http_status is not None:
        status = status_from_http(http_status)
    else:
        status = STATUS_SERVICE_ERROR if span.status_code == STATUS_CODE_ERROR else STATUS_SUCCESS
    return build_event(
        # Trace and span id together are unique, and an exporter retrying the same span
        # produces the same id, which the pipeline deduplicates.
        event_id=f"{span.trace_id}-{span.span_id}",
        time=time_from_epoch_ns(span.start_ns),
        operation=str(_first(attributes, "http.route") or span.name),
        latency_ms=max(0, span.end_ns - span.start_ns) / 1e6,
        request_status=status,
        request_type=str(_first(attributes, "http.request.method", "http.method") or ""),
        caller=str(_first(attributes, "ms.b.tel.caller") or ""),
        scenario=_text(_first(attributes, SCENARIO_KEY)),
        partner=_text(_first(attributes, PARTNER_KEY)),
        environment=str(
            _first(resource, "deployment.environment.name", "deployment.environment") or ""
        ),
        role=str(_first(resource, "service.name") or ""),
        role_instance=str(_first(resource, "service.instance.id", "host.name") or ""),
    )


def _first(attributes: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def _integer(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- OTLP JSON -------------------------------------------------------------------------


def spans_from_json(body: bytes) -> list[SpanView]:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(400, f"malformed JSON: {error}") from error
    if not isinstance(request, dict):
        raise PayloadError(400, "OTLP JSON body must be an ExportTraceServiceRequest object")
    try:
        return list(_json_spans(request))
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise PayloadError(400, f"not an OTLP ExportTraceServiceRequest: {error!r}") from error


def _json_spans(request: dict[str, Any]) -> Iterator[SpanView]:
    for resource_spans in request.get("resourceSpans") or []:
        resource = _json_attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                yield SpanView(
                    trace_id=str(span.get("traceId", "")).lower(),
                    span_id=str(span.get("spanId", "")).lower(),
                    name=str(span.get("name", "")),
                    kind=_json_enum(span.get("kind", 0), "SPAN_KIND_"),
                    start_ns=int(span.get("startTimeUnixNano", 0)),
                    end_ns=int(span.get("endTimeUnixNano", 0)),
                    status_code=_json_enum(
                        (span.get("status") or {}).get("code", 0), "STATUS_CODE_"
                    ),
                    attributes=_json_attributes(span.get("attributes")),
                    resource=resource,
                )


_ENUM_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
    "STATUS_CODE_UNSET": 0,
    "STATUS_CODE_OK": 1,
    "STATUS_CODE_ERROR": 2,
}


def _json_enum(value: Any, prefix: str) -> int:
    # The OTLP JSON encoding prescribes integers, but some senders write the enum's name.
    if isinstance(value, str) and not value.isdigit():
        return _ENUM_NAMES.get(value if value.startswith(prefix) else prefix + value, 0)
    return int(value)


def _json_attributes(attributes: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in attributes or []:
        value = attribute.get("value") or {}
        if "stringValue" in value:
            out[attribute["key"]] = value["stringValue"]
        elif "intValue" in value:
            out[attribute["key"]] = int(value["intValue"])
        elif "doubleValue" in value:
            out[attribute["key"]] = float(value["doubleValue"])
        elif "boolValue" in value:
            out[attribute["key"]] = bool(value["boolValue"])
    return out


# --- OTLP protobuf ---------------------------------------------------------------------


def spans_from_protobuf(body: bytes) -> list[SpanView]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise PayloadError(400, f"malformed protobuf: {error}") from error
    return list(_protobuf_spans(request))


def _protobuf_spans(request: Any) -> Iterator[SpanView]:
    for resource_spans in request.resource_spans:
        resource = _protobuf_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanView(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    name=span.name,
                    kind=span.kind,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status_code=span.status.code,
                    attributes=_protobuf_attributes(span.attributes),
                    resource=resource,
                )


def _protobuf_attributes(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in attributes:
        kind = attribute.value.WhichOneof("value")
        if kind in ("string_value", "int_value", "double_value", "bool_value"):
            out[attribute.key] = getattr(attribute.value, kind)
    return out


def protobuf_response(rejected: int, message: str) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTracePartialSuccess,
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    return response.SerializeToString()
