"""Ship events in the background: a bounded queue, gzip'd NDJSON batches, retries with backoff.

Nothing here may block or raise into the service that records events: a full queue drops its
oldest event and counts it, and a batch that cannot be delivered is counted as failed. An outage
of the receiver is logged once when it starts and once when it ends (with what it cost), never
once per event or per batch; the backoff grows across batches until the receiver answers again.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("telemetry_client")

# Answers worth sending the same batch again for: the receiver was overloaded, restarting or
# timed out. Any other 4xx means the batch itself is wrong and would fail again.
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# What a kept-alive connection the server has closed in the meantime looks like.
_STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# Servers close idle connections (uvicorn after 5 s): one idle longer is not worth trying.
_IDLE_SECONDS = 4.0


@dataclass(frozen=True)
class SenderStats:
    """Counters since the client was created; `dropped` and `failed` are events lost."""

    enqueued: int
    dropped: int
    accepted: int
    rejected: int
    failed: int
    batches: int
    retries: int
    queued: int

    @property
    def lost(self) -> int:
        """Events that will never reach the receiver."""
        return self.dropped + self.failed


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatchSender:
    """A daemon thread that posts queued events to the receiver's /v1/events in batches."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        retry_deadline: float = 60.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        self._url = url
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._timeout = timeout
        self._retry_deadline = retry_deadline
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max

        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Condition()
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._counts = dict.fromkeys(
            ("enqueued", "dropped", "accepted", "rejected", "failed", "batches", "retries"), 0
        )
        self._connection: http.client.HTTPConnection | None = None
        self._last_used = 0.0
        # While the receiver is unreachable: since when, and how many attempts in a row have
        # failed (the backoff's exponent); and the events lost when it last answered.
        self._outage_since: float | None = None
        self._lost_at_last_answer = 0
        self._failed_attempts = 0
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        self._thread = threading.Thread(target=self._run, name="telemetry-client", daemon=True)
        self._thread.start()

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue one event; False (and counted as dropped) once the client is closed.

        A full queue drops its oldest event (counted) to keep this one: after an outage the
        latest minutes are what the live figures need, and what arrives first.
        """
        with self._lock:
            if self._closing:
                self._counts["dropped"] += 1
                return False
            if len(self._queue) >= self._max_queue:
                self._queue.popleft()
                self._counts["dropped"] += 1
            self._queue.append(event)
            self._counts["enqueued"] += 1
            if len(self._queue) >= self._batch_size:
                self._lock.notify_all()
            return True

    def count_dropped(self) -> None:
        """An event the client could not even build: lost all the same, so counted."""
        self._count("dropped")

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True if the queue drained within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush, then stop the thread; later events are dropped and counted."""
        drained = self.flush(timeout)
        with self._lock:
            self._closing = True
            undelivered = len(self._queue) + self._in_flight
            lost = self._counts["dropped"] + self._counts["failed"]
            # Never to be sent: lost, and counted so (the batch in flight counts itself when
            # the sender gives it up).
            self._counts["failed"] += len(self._queue)
            self._queue.clear()
            self._lock.notify_all()
        if not drained:
            log.warning(
                "telemetry: %d events still queued for %s after %.1f s are lost "
                "(%d lost before)", undelivered, self._url, timeout or 0.0, lost,
            )  # fmt: skip
        # Woken from its backoff by closing, the sender gives up its batch (and counts it) at
        # once, unless the receiver's host does not even answer: then it counts it later.
        self._thread.join(timeout=1.0 if not drained else self._timeout)
        return drained

    def stats(self) -> SenderStats:
        with self._lock:
            return SenderStats(**self._counts, queued=len(self._queue) + self._in_flight)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._lock:
            deadline = time.monotonic() + self._flush_interval
            while not self._closing:
                if len(self._queue) >= self._batch_size or (self._queue and self._flush_requested):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self._queue:
                        break
                    deadline = time.monotonic() + self._flush_interval
                    remaining = self._flush_interval
                if not self._queue:
                    # Nothing left to flush: wake whoever waits in flush().
                    self._flush_requested = False
                    self._lock.notify_all()
                self._lock.wait(remaining)
            if not self._queue:
                return None
            size = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            self._in_flight = size
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:
                # A bug here must not kill the thread and silently stop all telemetry.
                log.exception("telemetry batch of %d events lost", len(batch))
                self._count("failed", len(batch))
            finally:
                with self._lock:
                    self._in_flight = 0
                    self._lock.notify_all()

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        encode = self._encoder.encode
        body = gzip.compress("\n".join(map(encode, batch)).encode(), compresslevel=5, mtime=0)
        self._count("batches")
        started = time.monotonic()
        while True:
            try:
                status, payload, retry_after = self._post(body)
                if status in _RETRYABLE_STATUS:
                    raise _Retryable(f"HTTP {status}", retry_after)
                self._receiver_answered()
                if status == 413 and len(batch) > 1:
                    # The receiver's size limit is smaller than our batch: halve until it fits.
                    middle = len(batch) // 2
                    self._deliver(batch[:middle])
                    self._deliver(batch[middle:])
                    return
                if status == 200 or (status == 400 and b'"rejected"' in payload):
                    # 400 with a list of rejections: every event was invalid; count them.
                    self._record_answer(len(batch), payload)
                    return
                log.warning(
                    "telemetry receiver refused a batch of %d events: HTTP %d %s",
                    len(batch),
                    status,
                    payload[:200].decode("utf-8", "replace"),
                )
                self._count("failed", len(batch))
                return
            except (OSError, http.client.HTTPException, _Retryable) as error:
                self._drop_connection()
                delay = self._unavailable(error)
                if time.monotonic() - started + delay > self._retry_deadline or self._closing:
                    # Logged once for the whole outage (when it ends), not once per batch.
                    self._count("failed", len(batch))
                    return
                self._count("retries")
                self._sleep(delay)

    def _unavailable(self, error: Exception) -> float:
        """Note a failed attempt; the seconds to wait before the next one."""
        with self._lock:
            self._failed_attempts += 1
            attempts = self._failed_attempts
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                log.warning(
                    "telemetry receiver %s unavailable (%s): up to %d events are kept and sent "
                    "when it answers again; this is logged once per outage",
                    self._url, error, self._max_queue,
                )  # fmt: skip
        delay = min(self._backoff_max, self._backoff_initial * 2 ** min(attempts - 1, 30))
        delay = random.uniform(delay / 2, delay)
        if isinstance(error, _Retryable) and error.retry_after:
            delay = min(self._backoff_max, max(delay, error.retry_after))
        return delay

    def _receiver_answered(self) -> None:
        with self._lock:
            self._failed_attempts = 0
            lost_now = self._counts["dropped"] + self._counts["failed"]
            lost, self._lost_at_last_answer = lost_now - self._lost_at_last_answer, lost_now
            if self._outage_since is None:
                return
            lasted = time.monotonic() - self._outage_since
            self._outage_since = None
        log.info(
            "telemetry receiver %s answers again after %.1f s; %d events were lost meanwhile",
            self._url, lasted, lost,
        )  # fmt: skip

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry; closing the client cuts the wait short."""
        with self._lock:
            self._lock.wait_for(lambda: self._closing, timeout=seconds)

    def _record_answer(self, sent: int, payload: bytes) -> None:
        try:
            answer = json.loads(payload)
            accepted = int(answer["accepted"])
            rejected = answer.get("rejected") or []
        except (ValueError, KeyError, TypeError):
            log.warning("telemetry receiver answered 200 with an unreadable body")
            accepted, rejected = sent, []
        if rejected:
            log.warning(
                "telemetry receiver rejected %d of %d events, first: %s",
                len(rejected),
                sent,
                rejected[0],
            )
        with self._lock:
            self._counts["accepted"] += accepted
            self._counts["rejected"] += len(rejected)

    def _post(self, body: bytes) -> tuple[int, bytes, float | None]:
        if self._connection is not None and time.monotonic() - self._last_used > _IDLE_SECONDS:
            self._drop_connection()
        reused = self._connection is not None
        try:
            return self._exchange(body)
        except _STALE_CONNECTION:
            if not reused:
                raise
        # The receiver closed a kept-alive connection while it was idle (uvicorn does after 5 s):
        # not an outage, so once more on a fresh connection before anything is counted.
        self._drop_connection()
        return self._exchange(body)

    def _exchange(self, body: bytes) -> tuple[int, bytes, float | None]:
        if self._connection is None:
            factory = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._connection = factory(self._host, self._port, timeout=self._timeout)
        try:
            self._connection.request("POST", self._path, body=body, headers=self._headers)
            response = self._connection.getresponse()
            payload = response.read()
        except BaseException:
            self._drop_connection()
            raise
        self._last_used = time.monotonic()
        if response.will_close:
            self._drop_connection()
        return response.status, payload, _seconds(response.getheader("Retry-After"))

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
