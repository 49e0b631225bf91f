"""The HTTP receiver: `POST /v1/events`, `POST /v1/traces` (OTLP), `POST /v1/annotations`,
`POST` and `GET /v1/silences`, `/healthz`, `/metrics`."""

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from telemetry_core.annotations import (
    AnnotationError,
    AnnotationStore,
    KnownScopes,
    build,
    parse_time,
)
from telemetry_core.routes import EventRoute
from telemetry_core.silences import MATCH_KEYS, SilenceError, SilenceStore, as_json, build_silence
from telemetry_ingest.forward import Forwarding, load_event_routes
from telemetry_ingest.ingest import Ingestor, IngestResult
from telemetry_ingest.metrics import Metrics
from telemetry_ingest.otlp import map_spans, protobuf_response, spans_from_json, spans_from_protobuf
from telemetry_ingest.payload import EventLines, PayloadError, decode_body, split_events
from telemetry_ingest.settings import IngestSettings

log = logging.getLogger("telemetry_ingest")

_PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
# How much of an oversize body is still read (and discarded) so that the sender, which is
# usually still writing it, gets to read the 413 instead of a reset connection.
_DRAIN_FACTOR = 4
_RETRY_AFTER_S = 1
# Annotations are notes a person or a deploy tool writes, a few at a time.
MAX_ANNOTATIONS_PER_REQUEST = 100
SILENCE_KEYS = ("match", "starts_at", "ends_at", "reason", "created_by")
# build_silence names the CLI's option (`--until`) and the bare match key; the API its fields.
_SILENCE_FIELDS = {"until": "ends_at", **{key: f"match.{key}" for key in MATCH_KEYS}}


class InFlightBudget:
    """Bytes of request bodies being handled at once, across this process's requests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        # Runs on the event loop only, so no lock is needed; one request alone is always let
        # through, or a body near the size limit could never be accepted.
        if self.used and self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give_back(self, size: int) -> None:
        self.used -= size


def create_app(
    settings: IngestSettings | None = None, event_routes: Sequence[EventRoute] | None = None
) -> FastAPI:
    """Build the receiver; settings and the event routes (the routes file TELEMETRY_ROUTES
    names) come from the environment at this moment if not given."""
    settings = settings or IngestSettings.from_env()
    if not settings.tokens:
        raise ValueError("no ingest tokens configured: set TELEMETRY_INGEST_TOKENS=token1,token2")
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    ingestor = Ingestor(settings.landing_dir, metrics, settings.max_future)
    tokens = [token.encode() for token in settings.tokens]
    routes = load_event_routes() if event_routes is None else tuple(event_routes)
    # Without event routes the receiver does exactly what it did before they existed.
    forwarding = Forwarding(routes, settings.forward_dir, metrics) if routes else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if forwarding is not None:
            forwarding.start()
        try:
            yield
        finally:
            if forwarding is not None:
                await run_in_threadpool(forwarding.stop)

    # No API documents: an unauthenticated caller learns nothing about the receiver.
    app = FastAPI(title="telemetry receiver", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.forwarding = forwarding

    def land(lines: list[bytes], source: str) -> IngestResult:
        """Land `lines`; returns once the landed files are durable, and queued durably for
        every event route."""
        result = ingestor.ingest(lines, source)
        if forwarding is not None and result.files:
            forwarding.enqueue(result.files)
        return result

    def answer(
        path: str, status: int, content: Any, media_type: str = "application/json"
    ) -> Response:
        metrics.inc("telemetry_ingest_requests_total", path=path, code=str(status))
        body = content if isinstance(content, bytes) else json.dumps(content).encode()
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return Response(body, status_code=status, media_type=media_type, headers=headers)

    def authorized(request: Request) -> bool:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return False
        offered = credential.strip().encode()
        # Compare against every token so the time taken does not reveal which one matched.
        return sum(hmac.compare_digest(offered, token) for token in tokens) > 0

    in_flight = InFlightBudget(settings.max_inflight_bytes)

    async def read_body(request: Request, path: str) -> bytes | Response:
        if not authorized(request):
            return answer(path, 401, {"error": "missing or unknown bearer token"})
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_large = {"error": f"request body exceeds {limit} bytes"}
        if declared.isdigit() and int(declared) > limit * _DRAIN_FACTOR:
            return answer(path, 413, too_large)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(settings.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit * _DRAIN_FACTOR:
                        break
                    if size <= limit:
                        chunks.append(chunk)
        except TimeoutError:
            # A sender that stalls mid-body (or a slowloris) must not hold a worker for ever.
            return answer(path, 408, {"error": f"request body not received within "
                                               f"{settings.body_timeout_s:g} s"})
        if size > limit:
            return answer(path, 413, too_large)
        return b"".join(chunks)

    @app.middleware("http")
    async def bound_memory_in_flight(request: Request, call_next):
        """Refuse, with a time to retry, the request whose body would take the receiver past
        its memory budget; a request's memory is a small multiple of its body."""
        if request.method != "POST":
            return await call_next(request)
        declared = request.headers.get("content-length", "")
        reserve = min(int(declared) if declared.isdigit() else settings.max_body_bytes,
                      settings.max_body_bytes)
        if not in_flight.take(reserve):
            metrics.inc("telemetry_ingest_requests_total", path=request.url.path, code="503")
            return Response(json.dumps({"error": "receiver busy: too much data in flight; "
                                                 "retry"}).encode(),
                            status_code=503, media_type="application/json",
                            headers={"Retry-After": str(_RETRY_AFTER_S)})
        try:
            return await call_next(request)
        finally:
            in_flight.give_back(reserve)

    def ingest_events(body: bytes, encoding: str | None) -> tuple[IngestResult, EventLines]:
        events = split_events(decode_body(body, encoding, settings.max_body_bytes))
        return land(events.lines, "http"), events

    @app.post("/v1/events")
    async def post_events(request: Request) -> Response:
        """NDJSON or a JSON array of SPEC §2 events, optionally gzip'd; answered once durable."""
        path = "/v1/events"
        body = await read_body(request, path)
        if isinstance(body, Response):
            return body
        metrics.inc("telemetry_ingest_bytes_received_total", len(body), source="http")
        try:
            result, events = await run_in_threadpool(
                ingest_events, body, request.headers.get("content-encoding")
            )
        except PayloadError as error:
            return answer(path, error.status, {"error": error.message})
        except OSError:
            log.exception("landing write failed")
            return answer(path, 503, {"error": "landing write failed; retry"})
        rejected = [
            {events.position_name: events.positions[index], "reason": reason}
            for index, reason in result.rejected
        ]
        # Nothing usable at all is the sender's error; a partly valid batch is a success
        # whose answer lists what was refused.
        status = 400 if rejected and not result.accepted else 200
        return answer(path, status, {"accepted": result.accepted, "rejected": rejected})

    def record_annotations(body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return 400, {"error": f"body is not JSON: {error}"}
        batch = document if isinstance(document, list) else [document]
        if not batch or not all(isinstance(item, dict) for item in batch):
            return 400, {"error": "body must be an annotation object or a non-empty list of them"}
        if len(batch) > MAX_ANNOTATIONS_PER_REQUEST:
            return 400, {"error": f"{len(batch):,} annotations in one request; at most "
                                  f"{MAX_ANNOTATIONS_PER_REQUEST}"}
        known = KnownScopes.from_reference(settings.reference_dir) if settings.reference_dir \
            else None
        built, errors = [], []
        for index, item in enumerate(batch):
            try:
                built.append(build(item, source="api", known=known))
            except AnnotationError as error:
                errors.append({"index": index, "field": error.field, "reason": error.reason})
        if errors:
            # All or nothing: a half-recorded batch would be posted again with its copies.
            return 400, {"error": "no annotation recorded", "rejected": errors}
        AnnotationStore(settings.lake_dir).add(built)
        return 201, {"recorded": [a.annotation_id for a in built]}

    async def record_posted(request: Request, path: str, what: str,
                            record: Any) -> Response:
        """Read the body and `record` it in the lake (off the event loop); 404 when this
        receiver keeps no lake, 503 when the write fails."""
        if settings.lake_dir is None:
            return answer(path, 404, {"error": f"{what}s are not enabled on this receiver"})
        body = await read_body(request, path)
        if isinstance(body, Response):
            return body
        try:
            status, content = await run_in_threadpool(record, body)
        except OSError:
            log.exception("%s write failed", what)
            return answer(path, 503, {"error": f"{what} write failed; retry"})
        return answer(path, status, content)

    @app.post("/v1/annotations")
    async def post_annotations(request: Request) -> Response:
        """One annotation (JSON: start, end, scope, kind, text, link) or a list of them."""
        return await record_posted(request, "/v1/annotations", "annotation",
                                   record_annotations)

    def record_silence(body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return 400, {"error": f"body is not JSON: {error}", "field": "body"}
        if not isinstance(document, dict):
            return 400, {"error": "body must be a silence object", "field": "body"}
        unknown = sorted(set(document) - set(SILENCE_KEYS))
        if unknown:
            return 400, {"error": f"unknown key {unknown[0]!r} (one of: "
                                  f"{', '.join(SILENCE_KEYS)})", "field": unknown[0]}
        match, reason = document.get("match", {}), document.get("reason", "")
        given = "" if document.get("created_by") is None else document["created_by"]
        try:
            if not isinstance(match, dict):
                raise SilenceError("match", "must be an object of KEY: GLOB")
            for name, value in (("reason", reason), ("created_by", given)):
                if not isinstance(value, str):
                    raise SilenceError(name, "must be a string")
            if len(given) > 200:
                raise SilenceError("created_by", "at most 200 characters")
            starts = document.get("starts_at")
            made = build_silence(
                match, parse_time(document.get("ends_at"), "ends_at"),
                None if starts is None else parse_time(starts, "starts_at"), reason,
                # Whoever holds a token may name anyone: the name is only what they said.
                created_by=f"api:{given.strip()}" if given.strip() else "api")
        except (SilenceError, AnnotationError) as error:
            return 400, {"error": error.reason,
                         "field": _SILENCE_FIELDS.get(error.field, error.field)}
        SilenceStore(settings.lake_dir).add([made])
        return 201, as_json(made)

    @app.post("/v1/silences")
    async def post_silence(request: Request) -> Response:
        """One silence (JSON: match, ends_at, starts_at, reason, created_by); answers it."""
        return await record_posted(request, "/v1/silences", "silence", record_silence)

    def listed_silences(active: bool) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        found = SilenceStore(settings.lake_dir).around(now - timedelta(days=7),
                                                       now + timedelta(days=31))
        return [as_json(s) for s in found if not active or s.active_at(now)]

    @app.get("/v1/silences")
    async def get_silences(request: Request) -> Response:
        """The silences overlapping the last 7 days and the next 31; `?active=true`: those in
        force now."""
        path = "/v1/silences"
        if settings.lake_dir is None:
            return answer(path, 404, {"error": "silences are not enabled on this receiver"})
        if not authorized(request):
            return answer(path, 401, {"error": "missing or unknown bearer token"})
        active = request.query_params.get("active", "false").strip().lower()
        if active not in ("true", "false"):
            return answer(path, 400, {"error": "active is true or false", "field": "active"})
        return answer(path, 200, await run_in_threadpool(listed_silences, active == "true"))

    def ingest_spans(body: bytes, encoding: str | None, protobuf: bool) -> tuple[int, int, str]:
        decoded = decode_body(body, encoding, settings.max_body_bytes)
        spans = spans_from_protobuf(decoded) if protobuf else spans_from_json(decoded)
        mapped = map_spans(spans)
        metrics.inc("telemetry_ingest_otlp_spans_ignored_total", mapped.ignored)
        metrics.inc("telemetry_ingest_events_rejected_total", len(mapped.rejected),
                    source="otlp")
        result = land(mapped.lines, "otlp")
        reasons = mapped.rejected + [reason for _, reason in result.rejected]
        return result.accepted, len(reasons), reasons[0] if reasons else ""

    @app.post("/v1/traces")
    async def post_traces(request: Request) -> Response:
        """OTLP/HTTP ExportTraceServiceRequest: each server span becomes one request event."""
        path = "/v1/traces"
        body = await read_body(request, path)
        if isinstance(body, Response):
            return body
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        protobuf = content_type in _PROTOBUF_TYPES
        if not protobuf and content_type != "application/json":
            return answer(path, 415, {"error": "use application/json or application/x-protobuf"})
        metrics.inc("telemetry_ingest_bytes_received_total", len(body), source="otlp")
        try:
            _, rejected, reason = await run_in_threadpool(
                ingest_spans, body, request.headers.get("content-encoding"), protobuf
            )
        except PayloadError as error:
            return answer(path, error.status, {"error": error.message})
        except OSError:
            log.exception("landing write failed")
            return answer(path, 503, {"error": "landing write failed; retry"})
        message = f"{rejected} spans rejected, first: {reason}" if rejected else ""
        if protobuf:
            return answer(path, 200, protobuf_response(rejected, message), content_type)
        partial = {"rejectedSpans": rejected, "errorMessage": message} if rejected else {}
        return answer(path, 200, {"partialSuccess": partial} if partial else {})

    @app.get("/healthz")
    async def healthz() -> Response:
        """200 while the landing folder is writable."""
        if os.access(settings.landing_dir, os.W_OK | os.X_OK):
            return answer("/healthz", 200, {"status": "ok"})
        return answer("/healthz", 503, {"status": "landing folder not writable"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        # Off the event loop: the forwarding queues are counted on disk.
        text = await run_in_threadpool(metrics.render) if forwarding else metrics.render()
        return Response(text, media_type="text/plain; version=0.0.4")

    return app
