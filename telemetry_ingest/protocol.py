"""The receiver's HTTP protocol: uvicorn's own (httptools when installed, else h11), with a
deadline for a request's headers.

uvicorn times out an idle keep-alive connection, but not a client that opens a connection and
then sends its headers a byte at a time (slowloris): each such connection is held for ever, and
enough of them exhaust the server's sockets. Here a connection waiting for a request's headers
is closed once TELEMETRY_INGEST_HEADER_TIMEOUT_SECONDS have passed; the body has its own
deadline in the app (TELEMETRY_INGEST_BODY_TIMEOUT_SECONDS).
"""

import asyncio
import logging

from telemetry_ingest.settings import IngestSettings

try:  # the faster parser uvicorn itself prefers, when it is installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornProtocol
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as UvicornProtocol

logger = logging.getLogger("uvicorn.error")


class HeaderDeadlineProtocol(UvicornProtocol):
    """uvicorn's protocol; a request's headers must arrive within the deadline."""

    _timeout_s: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_deadline: asyncio.TimerHandle | None = None
        self._cycle_awaited = self.cycle
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._cycle_awaited:
            self._cancel_deadline()  # the awaited request's headers are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._cycle_awaited = self.cycle
            self._await_headers()  # a kept-alive connection waits for the next request

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._cancel_deadline()
        if HeaderDeadlineProtocol._timeout_s is None:
            HeaderDeadlineProtocol._timeout_s = IngestSettings.from_env().header_timeout_s
        self._headers_deadline = self.loop.call_later(
            HeaderDeadlineProtocol._timeout_s, self._headers_too_slow
        )

    def _cancel_deadline(self) -> None:
        deadline = getattr(self, "_headers_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._headers_deadline = None

    def _headers_too_slow(self) -> None:
        self._headers_deadline = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            logger.info("closing the connection of %s: no complete request headers in %g s",
                        client, HeaderDeadlineProtocol._timeout_s)
            self.transport.close()
