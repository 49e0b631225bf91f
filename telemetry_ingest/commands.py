"""`telemetry serve` and `telemetry consume`: the receiver and the Kafka consumer as commands."""

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _event_routes(command: str) -> tuple[Any, ...]:
    """The routes file's event routes; a bad file stops the command with status 2 and its
    errors, rather than a receiver that silently forwards nothing."""
    from telemetry_core.routes import RoutesFileError
    from telemetry_ingest.forward import load_event_routes

    try:
        routes = load_event_routes()
    except RoutesFileError as error:
        for line in error.errors:
            click.echo(line, err=True)
        click.echo(f"telemetry {command}: the routes file (TELEMETRY_ROUTES) has "
                   f"{len(error.errors)} error{'s' if len(error.errors) != 1 else ''}; "
                   "not starting", err=True)
        raise SystemExit(2) from None
    for route in routes:
        where = (f"kafka {route.kafka_bootstrap}/{route.kafka_topic}" if route.kafka_topic
                 else f"http {route.http_url}")
        fields = ", ".join(f"{path}={glob}" for path, glob in route.fields) or "every event"
        click.echo(f"forwarding events {route.name}: {fields} -> {where}", err=True)
    return routes


def _landing_option(function: F) -> F:
    return click.option(
        "--landing-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Landing folder [default: $TELEMETRY_LANDING_DIR or $TELEMETRY_DATA_DIR/landing].",
    )(function)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port to bind.")
@_landing_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Receiver processes (each is one core's worth of JSON parsing); /metrics then "
    "reports the process that answers the scrape.",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(host: str, port: int, landing_dir: Path | None, workers: int, access_log: bool) -> None:
    """Run the HTTP receiver: POST /v1/events, POST /v1/traces (OTLP), /healthz, /metrics.

    Accepted bearer tokens come from TELEMETRY_INGEST_TOKENS (comma-separated); the request
    size limit from TELEMETRY_INGEST_MAX_BODY_BYTES (default 16 MiB); bodies in flight from
    TELEMETRY_INGEST_MAX_INFLIGHT_BYTES (64 MiB); a request's time to send its headers from
    TELEMETRY_INGEST_HEADER_TIMEOUT_SECONDS (10) and its body from
    TELEMETRY_INGEST_BODY_TIMEOUT_SECONDS (30). The event routes of the routes file
    TELEMETRY_ROUTES names also get the events they match, queued in TELEMETRY_FORWARD_DIR
    (default $TELEMETRY_DATA_DIR/forward).
    """
    import uvicorn

    from telemetry_ingest.protocol import HeaderDeadlineProtocol
    from telemetry_ingest.settings import IngestSettings

    if landing_dir is not None:
        # Worker processes build their app from the environment they inherit.
        os.environ["TELEMETRY_LANDING_DIR"] = str(landing_dir)
    settings = IngestSettings.from_env()
    if not settings.tokens:
        raise click.UsageError("set TELEMETRY_INGEST_TOKENS=token1,token2 to accept senders")
    # Checked here, before uvicorn starts: each worker's create_app reads the same file.
    if _event_routes("serve"):
        click.echo(f"queueing forwarded events in {settings.forward_dir.resolve()}", err=True)
    click.echo(f"landing events in {settings.landing_dir.resolve()}", err=True)
    uvicorn.run(
        "telemetry_ingest.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        http=HeaderDeadlineProtocol,
    )


@click.command()
@click.option("--topic", default="logging_raw", show_default=True)
@click.option(
    "--bootstrap-servers",
    envvar="TELEMETRY_KAFKA_BOOTSTRAP_SERVERS",
    default="127.0.0.1:9092",
    show_default=True,
    help="Kafka brokers [env: TELEMETRY_KAFKA_BOOTSTRAP_SERVERS].",
)
@click.option("--group", default="telemetry-ingest", show_default=True, help="Consumer group.")
@_landing_option
@click.option(
    "--assign",
    is_flag=True,
    help="Read every partition without joining the group (single consumer; no rebalance "
    "wait). Offsets are still committed to the group.",
)
@click.option("--max-batch", default=5000, show_default=True, type=click.IntRange(min=1))
@click.option("--max-wait", default=1.0, show_default=True, type=float, help="Seconds.")
def consume(
    topic: str,
    bootstrap_servers: str,
    group: str,
    landing_dir: Path | None,
    assign: bool,
    max_batch: int,
    max_wait: float,
) -> None:
    """Land events from a Kafka topic; offsets are committed only once files are durable.

    The event routes of the routes file TELEMETRY_ROUTES names also get the events they match.
    """
    from telemetry_ingest.forward import Forwarding
    from telemetry_ingest.kafka import KafkaSource
    from telemetry_ingest.kafka import consume as run_consumer
    from telemetry_ingest.metrics import Metrics
    from telemetry_ingest.settings import IngestSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = IngestSettings.from_env()
    landing = landing_dir or settings.landing_dir
    routes = _event_routes("consume")
    metrics = Metrics()
    forwarding = Forwarding(routes, settings.forward_dir, metrics) if routes else None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    source = KafkaSource(bootstrap_servers, topic, group, assign, max_batch, max_wait,
                         max_future=settings.max_future)
    click.echo(f"consuming {topic} from {bootstrap_servers} into {landing.resolve()}", err=True)
    if forwarding is not None:
        forwarding.start()
    try:
        stats = run_consumer(source, landing, stop,
                             forwarding.enqueue if forwarding is not None else None)
    finally:
        if forwarding is not None:
            forwarding.stop()
    forwarded = "".join(
        f", {metrics.value('telemetry_ingest_forward_events_total', route=route.name):.0f} "
        f"forwarded to {route.name}" for route in routes)
    click.echo(
        f"stopped: {stats.messages} messages, {stats.accepted} events landed, "
        f"{stats.rejected} rejected{forwarded}",
        err=True,
    )
