"""Event routing: accepted events that match an event route of the routes file (`events:` in
`TELEMETRY_ROUTES`, telemetry_core/routes.py) also go to the route's back end, a Kafka topic or
an HTTP endpoint, at least once. The landing folder still gets every event.

The outbox is made of hard links. Once the landing writer has made a file durable, and before
the sender is answered (or the Kafka offset committed), the file is linked into
`<forward dir>/<route>/queue/` for every event route and that folder is fsynced: a queued file
costs a folder entry, not a copy, and survives a crash as the landing file does. The lines are
judged by the raw stage's SQL, which gives no parsed events back, so a file is queued for every
route and each route's `Forwarder` keeps the lines that match when it reads the file.

A `Forwarder` thread per route takes the queued files oldest first, sends the matching lines,
and only then removes the queue entry: a crash between the send and the removal sends the file
again after a restart (the same event ids: at-least-once, never at-most-once). A file the
destination refuses for what it holds (an HTTP 4xx other than 408 and 429, a Kafka message too
large) moves to `<route>/failed/`, so that it never blocks the files behind it. One process at a
time forwards a route's queue: the one that holds an exclusive lock on `<route>/.lock`, which
the kernel releases when that process dies, so another worker or the restarted receiver takes
over where it stopped.
"""

import errno
import fcntl
import gzip
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemetry_core.durable import ensure_dir, fsync_dir, write_bytes
from telemetry_core.routes import EventRoute, load_routes, routes_path
from telemetry_ingest.kafka import _Throttle
from telemetry_ingest.metrics import Metrics

log = logging.getLogger("telemetry_ingest.forward")
client_log = logging.getLogger("telemetry_ingest.forward.kafka")
client_log.addFilter(_Throttle())

QUEUE = "queue"
FAILED = "failed"
LOCK = ".lock"
# A destination that fails is tried again after 0.5 s, then twice as long each time, up to 30 s.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# How often a queue is looked at for files that another process (another worker) queued.
POLL_S = 1.0
HTTP_TIMEOUT_S = 10.0
# Where a file cannot be hard-linked into the queue (another file system), it is copied.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


class _SecretsNotNeeded(Mapping[str, str]):
    """The environment, in which every variable counts as set: the receiver reads the routes
    file for its event routes and never needs the secrets of the mood routes' sinks (the
    pipeline, which sends to them, checks those)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        return self._environ.get(key) or "(not needed to forward events)"

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def load_event_routes(environ: Mapping[str, str] | None = None) -> tuple[EventRoute, ...]:
    """The event routes of the routes file named by TELEMETRY_ROUTES (none when it is not set);
    raises RoutesFileError, naming every bad line of the file, as the pipeline would."""
    env = os.environ if environ is None else environ
    return load_routes(routes_path(env), environ=_SecretsNotNeeded(env)).events


@dataclass
class _Queued:
    """One queued file, read: the lines its route takes, keyed by event id."""

    path: Path
    events: list[tuple[bytes, bytes]]
    unreadable: int = 0


@dataclass(frozen=True)
class Outcome:
    """What became of one file's send: `done`, `retry` (later, the file stays queued) or
    `failed` (refused for its content: it moves to failed/)."""

    status: str
    reason: str = ""
    retry_after_s: float | None = None


DONE = Outcome("done")


class HttpSender:
    """POSTs each file's matching lines as gzip'd NDJSON, `Idempotency-Key` = the file's name
    (the hash of the landing file, so a re-sent file carries the key it had)."""

    max_files = 1
    max_events = 1 << 30

    def __init__(self, url: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        # A redirect is not followed: urllib would re-send a POST as a GET without its body.
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, files: Sequence[_Queued], stop: threading.Event) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for queued in files:
            if stop.is_set() or (outcomes and outcomes[-1].status == "retry"):
                outcomes.append(Outcome("retry", "not sent"))
                continue
            outcomes.append(self._post(queued))
        return outcomes

    def _post(self, queued: _Queued) -> Outcome:
        body = gzip.compress(b"\n".join(line for _, line in queued.events) + b"\n", 5)
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip",
            "Idempotency-Key": queued.path.name})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read()
                return DONE
        except urllib.error.HTTPError as answer:
            status = answer.code
            detail = _answer_text(answer)
            if 400 <= status < 500 and status not in (408, 429):
                return Outcome("failed", f"HTTP {status} {detail}".strip())
            return Outcome("retry", f"HTTP {status} {detail}".strip(),
                           _retry_after(answer.headers.get("Retry-After")))
        except (urllib.error.URLError, OSError, ValueError) as failure:
            return Outcome("retry", str(getattr(failure, "reason", None) or failure))

    def close(self) -> None:
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _answer_text(answer: urllib.error.HTTPError) -> str:
    try:
        return answer.read(200).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_BACKOFF_S) if value else None
    except ValueError:
        return None


def _kafka_poison() -> frozenset[int]:
    """The Kafka errors that refuse a message for what it is: sending it again cannot help."""
    from confluent_kafka import KafkaError

    return frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE,
                      KafkaError.INVALID_RECORD})


class KafkaSender:
    """Produces each matching line (key: the event id) with an idempotent producer; a file is
    done only when every one of its messages has a successful delivery report."""

    max_files = 500
    max_events = 20_000

    def __init__(self, bootstrap: str, topic: str, config: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.config = dict(config or {})
        self._producer: Any = None
        self._fatal: str | None = None
        self._poison = _kafka_poison()

    def _make(self) -> Any:
        from confluent_kafka import Producer

        self._fatal = None
        return Producer({
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # A message the broker has not taken by then gets a failed delivery report: the
            # file stays queued and is sent again after a backoff.
            "message.timeout.ms": 30_000,
            "reconnect.backoff.max.ms": 2000,
            "error_cb": self._on_error,
            "logger": client_log,
            **self.config,
        })

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            self._fatal = str(error)
        client_log.warning("kafka: %s", error)

    def send(self, files: Sequence[_Queued], stop: threading.Event) -> list[Outcome]:
        from confluent_kafka import KafkaException

        if self._producer is None or self._fatal:
            self._producer = self._make()
        producer = self._producer
        errors: list[list[Any]] = [[] for _ in files]
        refused: dict[int, str] = {}

        def reporter(index: int) -> Any:
            def on_delivery(error: Any, _message: Any) -> None:
                if error is not None:
                    errors[index].append(error)
            return on_delivery

        for index, queued in enumerate(files):
            on_delivery = reporter(index)
            for key, line in queued.events:
                while True:
                    try:
                        producer.produce(self.topic, value=line, key=key, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.1)
                        if stop.is_set():
                            return [Outcome("retry", "stopped")] * len(files)
                    except KafkaException as error:
                        refusal = error.args[0]
                        if refusal.code() not in self._poison:
                            # The producer itself is unusable: a new one sends the files again.
                            self._fatal = str(refusal)
                            return [Outcome("retry", f"kafka: {refusal}")] * len(files)
                        # Refused before it was sent: a message larger than the producer takes.
                        refused[index] = str(refusal)
                        break
                if index in refused:
                    break
            producer.poll(0)
        while producer.flush(0.5) > 0:
            if stop.is_set():
                # The messages in flight may still arrive: the files are sent again later.
                return [Outcome("retry", "stopped")] * len(files)
        outcomes = []
        for index in range(len(files)):
            if index in refused:
                outcomes.append(Outcome("failed", f"kafka refused a message: {refused[index]}"))
            elif not errors[index]:
                outcomes.append(DONE)
            elif any(error.code() in self._poison for error in errors[index]):
                outcomes.append(Outcome("failed", f"kafka refused a message: {errors[index][0]}"))
            else:
                outcomes.append(Outcome("retry", f"kafka: {errors[index][0]}"))
        return outcomes

    def close(self) -> None:
        self._producer = None


def sender_for(route: EventRoute) -> HttpSender | KafkaSender:
    if route.kafka_topic:
        assert route.kafka_bootstrap is not None
        return KafkaSender(route.kafka_bootstrap, route.kafka_topic)
    assert route.http_url is not None
    return HttpSender(route.http_url)


@dataclass
class _Backoff:
    delay_s: float = 0.0
    failures: int = 0

    def fail(self, retry_after_s: float | None) -> float:
        """How long to wait before the next try (at least what the destination asked for)."""
        self.failures += 1
        base = FIRST_BACKOFF_S if self.delay_s == 0 else min(self.delay_s * 2, MAX_BACKOFF_S)
        self.delay_s = base
        # ±10 % so that workers restarted together do not all retry in the same instant.
        wait = base * random.uniform(0.9, 1.1)
        return min(max(wait, retry_after_s or 0.0), MAX_BACKOFF_S)


@dataclass
class Forwarder:
    """Sends one route's queue, in a daemon thread, while this process holds the route's lock."""

    route: EventRoute
    folder: Path
    metrics: Metrics
    sender: Any = None
    wake: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.queue = self.folder / QUEUE
        self.failed = self.folder / FAILED
        self.sender = self.sender or sender_for(self.route)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._backoff = _Backoff()
        ensure_dir(self.queue)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"forward-{self.route.name}",
                                        daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self.wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def pending(self) -> list[Path]:
        """The queued files, oldest first."""
        found = []
        with os.scandir(self.queue) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    found.append((entry.stat().st_mtime_ns, entry.name))
                except FileNotFoundError:
                    continue
        return [self.queue / name for _, name in sorted(found)]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if not self._take_lock():
                        self._stop.wait(POLL_S)
                        continue
                    self.wake.clear()
                    pending = self.pending()
                    if not pending:
                        self.wake.wait(POLL_S)
                        continue
                    outcome = self.forward(pending)
                except Exception as error:  # a bug or a disk error must not end forwarding
                    log.exception("route %s: forwarding failed", self.route.name)
                    outcome = Outcome("retry", f"{type(error).__name__}: {error}")
                if outcome.status == "retry" and not self._stop.is_set():
                    wait = self._backoff.fail(outcome.retry_after_s)
                    self.metrics.inc("telemetry_ingest_forward_retries_total",
                                     route=self.route.name)
                    log.warning("route %s: %s; trying again in %.1f s (failure %d)",
                                self.route.name, outcome.reason, wait, self._backoff.failures)
                    # Not woken by new files: a destination that is down is not hammered.
                    self._stop.wait(wait)
                elif self._backoff.failures:
                    log.warning("route %s: the destination takes events again after %d "
                                "failures", self.route.name, self._backoff.failures)
                    self._backoff = _Backoff()
        finally:
            self.sender.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _take_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        log.info("route %s: forwarding %s", self.route.name, self.queue)
        return True

    def forward(self, pending: Sequence[Path]) -> Outcome:
        """Send `pending` in batches; stops at the first batch with a file to try again."""
        batch: list[_Queued] = []
        events = 0
        for path in pending:
            if self._stop.is_set():
                return DONE
            queued = self._read(path)
            if queued is None:
                continue
            if not queued.events:
                self._done(queued)
                continue
            batch.append(queued)
            events += len(queued.events)
            if len(batch) >= self.sender.max_files or events >= self.sender.max_events:
                outcome = self._send(batch)
                if outcome.status == "retry":
                    return outcome
                batch, events = [], 0
        return self._send(batch) if batch else DONE

    def _send(self, batch: list[_Queued]) -> Outcome:
        outcomes = self.sender.send(batch, self._stop)
        retry = None
        for queued, outcome in zip(batch, outcomes, strict=True):
            if outcome.status == "done":
                self._done(queued)
            elif outcome.status == "failed":
                self._fail(queued, outcome.reason)
            else:
                retry = retry or outcome
        return retry or DONE

    def _read(self, path: Path) -> _Queued | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        queued = _Queued(path, [])
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                # Accepted by the raw stage's SQL, beyond Python's json module (nesting).
                queued.unreadable += 1
                continue
            if isinstance(event, dict) and self.route.matches(event):
                queued.events.append((str(event.get("id", "")).encode(), line))
        if queued.unreadable:
            log.warning("route %s: %d lines of %s cannot be read as JSON here and are not "
                        "forwarded", self.route.name, queued.unreadable, path.name)
            self.metrics.inc("telemetry_ingest_forward_events_unreadable_total",
                             queued.unreadable, route=self.route.name)
        return queued

    def _done(self, queued: _Queued) -> None:
        # Counted first: a scrape that sees the queue empty sees every event counted.
        if queued.events:
            self.metrics.inc("telemetry_ingest_forward_events_total", len(queued.events),
                             route=self.route.name)
        queued.path.unlink(missing_ok=True)

    def _fail(self, queued: _Queued, reason: str) -> None:
        ensure_dir(self.failed)
        target = self.failed / queued.path.name
        target.with_name(f"{target.name}.reason").write_text(reason + "\n", encoding="utf-8")
        self.metrics.inc("telemetry_ingest_forward_failed_files_total", route=self.route.name)
        os.replace(queued.path, target)
        log.error("route %s: %s refused (%s); moved to %s", self.route.name,
                  queued.path.name, reason, self.failed)


def _count(folder: Path, suffix: str = "") -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries
                       if not e.name.startswith(".") and e.name.endswith(suffix))
    except FileNotFoundError:
        return 0


class Forwarding:
    """The event routes of one process: queues every landed file, forwards in the background."""

    def __init__(self, routes: Sequence[EventRoute], forward_dir: Path, metrics: Metrics,
                 senders: Mapping[str, Any] | None = None) -> None:
        self.forward_dir = forward_dir
        self.forwarders = [
            Forwarder(route, forward_dir / route.name, metrics, (senders or {}).get(route.name))
            for route in routes
        ]
        for route in routes:
            for name in ("telemetry_ingest_forward_events_total",
                         "telemetry_ingest_forward_retries_total",
                         "telemetry_ingest_forward_failed_files_total",
                         "telemetry_ingest_forward_events_unreadable_total"):
                metrics.inc(name, 0, route=route.name)
        metrics.add_gauges(self.gauges)

    def enqueue(self, files: Sequence[Path]) -> None:
        """Queue durable landing files for every route, durably; returns once they are."""
        for forwarder in self.forwarders:
            linked = False
            for file in files:
                target = forwarder.queue / file.name
                try:
                    os.link(file, target)
                    linked = True
                except FileExistsError:
                    # Queued already under its content hash: the same lines, but the process
                    # that linked it may have died before making the link durable.
                    linked = True
                    continue
                except OSError as error:
                    if error.errno not in _NO_LINK:
                        raise
                    write_bytes(target, file.read_bytes())
            if linked:
                fsync_dir(forwarder.queue)
            forwarder.wake.set()

    def start(self) -> None:
        for forwarder in self.forwarders:
            forwarder.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop every forwarder, waiting at most `timeout_s` in all: a send cut short leaves
        its file queued, to be sent again at the next start."""
        deadline = time.monotonic() + timeout_s
        for forwarder in self.forwarders:
            forwarder.request_stop()
        for forwarder in self.forwarders:
            forwarder.stop(max(deadline - time.monotonic(), 0.0))

    def gauges(self) -> list[tuple[str, dict[str, str], float]]:
        samples: list[tuple[str, dict[str, str], float]] = []
        for forwarder in self.forwarders:
            route = {"route": forwarder.route.name}
            samples.append(("telemetry_ingest_forward_queue_files", route,
                            _count(forwarder.queue)))
            samples.append(("telemetry_ingest_forward_failed_files", route,
                            _count(forwarder.failed, ".jsonl")))
        return samples
