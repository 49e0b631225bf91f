"""The service-facing API: time a request, record its status, ship it in the background."""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from telemetry_client.config import ClientSettings
from telemetry_client.events import (
    STATUS_SERVICE_ERROR,
    STATUS_SUCCESS,
    build_event,
    format_time,
    status_from_http,
)
from telemetry_client.transport import BatchSender, SenderStats

log = logging.getLogger("telemetry_client")

F = TypeVar("F", bound=Callable[..., Any])
Clock = Callable[[], datetime]

_correlation: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "telemetry_correlation", default=(None, None)
)
# The request being handled, so that code deep inside a handler (or a correlation block it
# opens) can say which scenario and partner the request belongs to.
_current_request: ContextVar[RequestScope | None] = ContextVar(
    "telemetry_current_request", default=None
)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def correlation(scenario: str | None = None, partner: str | None = None) -> Iterator[None]:
    """Scenario and partner for every request recorded inside the block (nested blocks override).

    Opened inside a request being handled (by the middleware or `client.request`), it also
    gives that request its scenario and partner. A context variable, so it follows the
    request through threads started with `contextvars.copy_context()` and asyncio tasks.
    """
    outer_scenario, outer_partner = _correlation.get()
    token = _correlation.set((scenario or outer_scenario, partner or outer_partner))
    active = _current_request.get()
    if active is not None:
        active.scenario = scenario or active.scenario
        active.partner = partner or active.partner
    try:
        yield
    finally:
        _correlation.reset(token)


def current_request() -> RequestScope | None:
    """The request being handled in this context, or None outside one."""
    return _current_request.get()


class RequestScope:
    """One timed request; set `http_status` or `status` (and, if known, `operation`) before
    it ends."""

    __slots__ = (
        "_started",
        "_wall",
        "caller",
        "event_id",
        "http_status",
        "operation",
        "partner",
        "request_type",
        "scenario",
        "status",
    )

    def __init__(
        self,
        operation: str,
        request_type: str,
        caller: str,
        scenario: str | None,
        partner: str | None,
        event_id: str | None,
        wall: datetime,
    ) -> None:
        self.operation = operation
        self.request_type = request_type
        self.caller = caller
        self.scenario = scenario
        self.partner = partner
        self.event_id = event_id or uuid.uuid4().hex
        self.http_status: int | None = None
        self.status: int | None = None
        self._wall = wall
        self._started = time.perf_counter()

    def request_status(self, failed: bool) -> int:
        if self.status is not None:
            return self.status
        if self.http_status is not None:
            return status_from_http(self.http_status)
        return STATUS_SERVICE_ERROR if failed else STATUS_SUCCESS


class TelemetryClient:
    """Records one event per incoming request and ships them to the HTTP receiver.

    Every setting is an argument or its environment variable (`config.VARIABLES`):
    `TelemetryClient()` alone reads `TELEMETRY_CLIENT_ENDPOINT`, `TELEMETRY_CLIENT_TOKEN`, ….
    `endpoint` is the receiver's base URL (`http://host:8080`) or its full `/v1/events` URL.
    Recording never blocks and never raises: a full queue drops its oldest event, counted
    (`stats().dropped`). Queued events are flushed at interpreter exit, for at most
    `exit_flush_timeout` seconds. `clock` stamps events (replays and tests set it).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        environment: str | None = None,
        role: str | None = None,
        role_instance: str | None = None,
        is_test: bool = False,
        max_queue: int | None = None,
        batch_size: int | None = None,
        flush_interval: float | None = None,
        timeout: float | None = None,
        retry_deadline: float = 60.0,
        exit_flush_timeout: float | None = None,
        clock: Clock = _utc_now,
    ) -> None:
        self.settings = ClientSettings.resolve(
            endpoint=endpoint, token=token, environment=environment, role=role,
            role_instance=role_instance, max_queue=max_queue, batch_size=batch_size,
            flush_interval=flush_interval, timeout=timeout,
            exit_flush_timeout=exit_flush_timeout,
        )  # fmt: skip
        self.is_test = is_test
        self._clock = clock
        self._sender = BatchSender(
            self.settings.events_url,
            self.settings.token,
            max_queue=self.settings.max_queue,
            batch_size=self.settings.batch_size,
            flush_interval=self.settings.flush_interval,
            timeout=self.settings.timeout,
            retry_deadline=retry_deadline,
        )
        _open_clients.add(self)

    @property
    def environment(self) -> str:
        return self.settings.environment

    @property
    def role(self) -> str:
        return self.settings.role

    @property
    def role_instance(self) -> str:
        return self.settings.role_instance

    correlation = staticmethod(correlation)

    @contextmanager
    def request(
        self,
        operation: str,
        *,
        request_type: str = "",
        caller: str = "",
        scenario: str | None = None,
        partner: str | None = None,
        event_id: str | None = None,
    ) -> Iterator[RequestScope]:
        """Time the block as one request; an exception escaping it records a failure."""
        scope = self.start_request(operation, request_type=request_type, caller=caller,
                                   scenario=scenario, partner=partner, event_id=event_id)
        token = _current_request.set(scope)
        try:
            yield scope
        except BaseException:
            self.finish_request(scope, failed=True)
            raise
        finally:
            _current_request.reset(token)
        self.finish_request(scope, failed=False)

    def start_request(
        self,
        operation: str,
        *,
        request_type: str = "",
        caller: str = "",
        scenario: str | None = None,
        partner: str | None = None,
        event_id: str | None = None,
    ) -> RequestScope:
        """A request that starts now and is recorded by `finish_request` (the middleware's
        form of `request`, for responses that end after the handler returns)."""
        return RequestScope(operation, request_type, caller, scenario, partner, event_id,
                            self._clock())

    def finish_request(self, scope: RequestScope, *, failed: bool) -> None:
        """Record the request `start_request` began; never raises."""
        try:
            latency_ms = (time.perf_counter() - scope._started) * 1000.0
            self.record(
                scope.operation,
                latency_ms=latency_ms,
                request_status=scope.request_status(failed),
                time=scope._wall,
                request_type=scope.request_type,
                caller=scope.caller,
                scenario=scope.scenario,
                partner=scope.partner,
                event_id=scope.event_id,
            )
        except Exception:
            log.exception("telemetry event for %r not recorded", scope.operation)

    def track(
        self,
        operation: str | None = None,
        *,
        request_type: str = "",
        caller: str = "",
        scenario: str | None = None,
        partner: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator: every call of the function (sync or async) is one request."""

        def decorate(function: F) -> F:
            name = operation or function.__qualname__
            options = dict(
                request_type=request_type, caller=caller, scenario=scenario, partner=partner
            )

            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def run_async(*args: Any, **kwargs: Any) -> Any:
                    with self.request(name, **options):
                        return await function(*args, **kwargs)

                return run_async  # type: ignore[return-value]

            @functools.wraps(function)
            def run(*args: Any, **kwargs: Any) -> Any:
                with self.request(name, **options):
                    return function(*args, **kwargs)

            return run  # type: ignore[return-value]

        return decorate

    def record(
        self,
        operation: str,
        *,
        latency_ms: float,
        request_status: int | None,
        time: datetime | None = None,
        request_type: str = "",
        caller: str = "",
        scenario: str | None = None,
        partner: str | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Record a request measured elsewhere; False if it was dropped."""
        try:
            context_scenario, context_partner = _correlation.get()
            event = build_event(
                event_id=event_id or uuid.uuid4().hex,
                time=format_time(time or self._clock()),
                operation=operation,
                latency_ms=latency_ms,
                request_status=request_status,
                request_type=request_type,
                caller=caller,
                scenario=scenario or context_scenario,
                partner=partner or context_partner,
                environment=self.environment,
                role=self.role,
                role_instance=self.role_instance,
                is_test=self.is_test,
            )
            return self._sender.submit(event)
        except Exception:
            log.exception("telemetry event for %r not recorded", operation)
            self._sender.count_dropped()
            return False

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything queued; True if it was all handed over within `timeout` seconds."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush for at most `timeout` seconds, then stop the background thread."""
        _open_clients.discard(self)
        return self._sender.close(timeout)

    def stats(self) -> SenderStats:
        return self._sender.stats()

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_open_clients: weakref.WeakSet[TelemetryClient] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for client in list(_open_clients):
        client.close(client.settings.exit_flush_timeout)
