"""One line instruments a web service: each request it serves becomes one event.

    app.wsgi_app = WSGIMiddleware(app.wsgi_app, client)     # Flask, or any WSGI app
    app.add_middleware(ASGIMiddleware, client=client)       # FastAPI, Starlette, any ASGI app

Without a client, one is built from the environment (`TELEMETRY_CLIENT_*`). The operation is
the framework's route template when it has one (Flask's URL rule, Starlette's route path), so
`/orders/17` and `/orders/18` are one operation; otherwise the path. Scenario and partner come
from the request's W3C `baggage` header (`ms.b.tel.scenario`, `ms.b.tel.partner`), and the
handler can set them with `correlation(...)` or on `current_request()`. No framework is
imported: both speak only their protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, MutableMapping
from typing import Any, Callable, Optional

from telemetry_client.client import RequestScope, TelemetryClient, _current_request
from telemetry_client.events import correlation_from_baggage

Environ = dict[str, Any]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Names the operation from the request (a WSGI environ or an ASGI scope), instead of the route.
OperationNamer = Callable[[Any], Optional[str]]


class WSGIMiddleware:
    """Wraps a WSGI application; the request ends when the server closes the response body."""

    def __init__(self, app: Callable[..., Iterable[bytes]], client: TelemetryClient | None = None,
                 *, operation: OperationNamer | None = None) -> None:
        self.app = app
        self.client = client if client is not None else TelemetryClient()
        self._operation = operation

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        scenario, partner = correlation_from_baggage(environ.get("HTTP_BAGGAGE"))
        scope = self.client.start_request(
            "", request_type=environ.get("REQUEST_METHOD", ""), scenario=scenario,
            partner=partner,
        )  # fmt: skip

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                scope.http_status = int(status.split(" ", 1)[0])
            except ValueError:
                scope.http_status = None
            # Named now: Flask forgets its request (and so the matched route) before the
            # response body is sent.
            if not scope.operation:
                scope.operation = self._name(environ)
            return start_response(status, headers, exc_info)

        token = _current_request.set(scope)
        try:
            body = self.app(environ, start)
        except BaseException:
            self._finish(scope, environ, failed=True)
            raise
        finally:
            _current_request.reset(token)
        return _ResponseBody(body, lambda failed: self._finish(scope, environ, failed=failed))

    def _finish(self, scope: RequestScope, environ: Environ, *, failed: bool) -> None:
        if not scope.operation:
            scope.operation = self._name(environ)
        self.client.finish_request(scope, failed=failed or scope.http_status is None)

    def _name(self, environ: Environ) -> str:
        try:
            if self._operation is not None:
                named = self._operation(environ)
                if named:
                    return named
            # Werkzeug (Flask) keeps its request object in the environ; its URL rule is the
            # route template.
            rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
            if rule is not None:
                return str(rule.rule)
        except Exception:  # a naming bug must not lose the request
            pass
        return environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") or "/"


class _ResponseBody:
    """The app's response body, passed through; its end (or failure) ends the request."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[bool], None]) -> None:
        self._body = body
        self._finish = finish
        self._failed = False
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._done = True
                self._finish(self._failed)


class ASGIMiddleware:
    """Wraps an ASGI application; HTTP requests only (lifespan and websockets pass through)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 client: TelemetryClient | None = None, *,
                 operation: OperationNamer | None = None) -> None:
        self.app = app
        self.client = client if client is not None else TelemetryClient()
        self._operation = operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        scenario, partner = correlation_from_baggage(_header(scope, b"baggage"))
        request = self.client.start_request(
            "", request_type=scope.get("method", ""), scenario=scenario, partner=partner
        )

        async def send_and_watch(message: Message) -> None:
            if message.get("type") == "http.response.start":
                request.http_status = int(message.get("status", 500))
            await send(message)

        token = _current_request.set(request)
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            self._finish(request, scope, failed=True)
            raise
        finally:
            _current_request.reset(token)
        self._finish(request, scope, failed=request.http_status is None)

    def _finish(self, request: RequestScope, scope: Scope, *, failed: bool) -> None:
        if not request.operation:
            request.operation = self._name(scope)
        self.client.finish_request(request, failed=failed)

    def _name(self, scope: Scope) -> str:
        try:
            if self._operation is not None:
                named = self._operation(scope)
                if named:
                    return named
            # Starlette's router (FastAPI's too) leaves the matched route in the scope.
            path = getattr(scope.get("route"), "path", None)
            if path:
                return str(path)
        except Exception:  # a naming bug must not lose the request
            pass
        return str(scope.get("path") or "/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None
