"""One line instruments a service: Flask and FastAPI apps served on loopback under load, their
events through the real receiver, published by the pipeline."""

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from flask import Flask

from telemetry_client import ASGIMiddleware, WSGIMiddleware, correlation, current_request
from tests.helpers import serve_asgi
from tests.platform import Platform
from tests.telemetry_client.services import (
    call,
    client_for,
    example,
    hammer,
    replay_clock,
    serve_wsgi,
)
from tests.telemetry_ingest.servers import TOKEN, Receiver, landed_lines

HOUR = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SENDERS, REQUESTS = 8, 50


def landed(landing: Path) -> list[dict]:
    return [json.loads(line) for line in landed_lines(landing)]


def test_flask_and_fastapi_services_are_published(platform: Platform, tmp_path: Path) -> None:
    receiver = Receiver(platform.settings.landing_dir, tmp_path / "receiver.log").start()
    clock = replay_clock(HOUR)
    answers, clients = {}, {}
    try:
        for role, serve, module in (("flask-quotes", serve_wsgi, "flask_service"),
                                    ("fastapi-quotes", serve_asgi, "fastapi_service")):
            clients[role] = client_for(receiver.url, TOKEN, role, clock)
            with serve(example(module).create_app(clients[role])) as base:
                answers[role] = hammer(base, SENDERS, REQUESTS)
        for client in clients.values():
            assert client.flush(timeout=30)
    finally:
        receiver.stop()
    for role, client in clients.items():
        stats = client.stats()
        assert (stats.accepted, stats.dropped, stats.failed) == (SENDERS * REQUESTS, 0, 0), role
        client.close()

    events = landed(platform.settings.landing_dir)
    by_role = Counter((e["ext"]["cloud"]["role"], e["data"]["baseData"]["operationName"],
                       e["data"]["baseData"]["requestStatus"]) for e in events)  # fmt: skip
    # Operations are route templates, not paths; a 500 answer or an exception is status 6.
    expected = Counter()
    for role, calls in answers.items():
        quotes, orders = ("/quotes/<sku>", "/orders") if role == "flask-quotes" else (
            "/quotes/{sku}", "/orders")  # fmt: skip
        for scenario, _, http_status in calls:
            operation = quotes if scenario == "checkout.purchase_quote" else orders
            expected[(role, operation, 6 if http_status >= 500 else 3)] += 1
    assert by_role == expected
    failed_orders = [expected[(role, "/orders", 6)] for role in answers]
    assert failed_orders[0] == failed_orders[1] > 0

    with (platform.settings.reference_dir / "scenarios.csv").open("a") as scenarios:
        scenarios.write("checkout.purchase_quote,Purchase quote,checkout,99.9,ST-1\n"
                        "checkout.place_order,Place order,checkout,99.9,ST-2\n")  # fmt: skip
    platform.run_whole_day("2026-11-20")

    calls = [call for role_calls in answers.values() for call in role_calls]
    published = {row["scenario_id"]: row for row in platform.query(
        "select * from published.scenario_daily order by scenario_id")}  # fmt: skip
    assert set(published) == {"checkout.place_order", "checkout.purchase_quote"}
    for scenario, row in published.items():
        total = sum(1 for s, _, _ in calls if s == scenario)
        failed = sum(1 for s, _, status in calls if s == scenario and status >= 500)
        latencies = [e["data"]["baseData"]["latencyMs"] for e in events
                     if f"ms.b.tel.scenario={scenario};" in e["data"]["cC"]]  # fmt: skip
        assert (row["total_requests"], row["failed_requests"]) == (total, failed)
        assert row["availability_pct"] == pytest.approx(100 * (total - failed) / total)
        assert row["avg_latency_ms"] == pytest.approx(sum(latencies) / len(latencies), rel=1e-6)
        assert 0 < row["p95_latency_ms"] <= max(latencies) * 1.02
    partners = Counter((s, p) for s, p, _ in calls)
    assert {(r["scenario_id"], r["partner_id"]): r["total_requests"] for r in platform.query(
        "select * from published.scenario_partner_daily")} == partners  # fmt: skip


def test_route_status_and_correlation_rules(receiver: Receiver) -> None:
    client = client_for(receiver.url, TOKEN, "rules")
    flask = Flask("rules")
    flask.wsgi_app = WSGIMiddleware(flask.wsgi_app, client)  # type: ignore[method-assign]

    @flask.get("/stream")
    def stream():  # type: ignore[no-untyped-def]
        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(3):
                time.sleep(0.05)
                yield b"x"
        return flask.response_class(chunks())

    @flask.get("/renamed")
    def renamed():  # type: ignore[no-untyped-def]
        scope = current_request()
        assert scope is not None
        scope.operation = "Renamed"
        scope.scenario = "set.on.scope"
        return "ok"

    def bare_wsgi(environ, start_response):  # type: ignore[no-untyped-def]
        raise RuntimeError("a WSGI app without a framework to catch this")

    fastapi = FastAPI(openapi_url=None)

    @fastapi.get("/items/{item}")
    async def item(item: str) -> dict:
        with correlation(partner="from-the-handler"):
            return {"item": item}

    async def silent_asgi(scope, receive, send):  # type: ignore[no-untyped-def]
        return None  # never answers: the server makes it a 500

    named = WSGIMiddleware(flask.wsgi_app.app, client, operation=lambda environ: "Named")
    with serve_wsgi(flask) as base, serve_wsgi(WSGIMiddleware(bare_wsgi, client)) as bare, \
            serve_wsgi(named) as named_base, serve_asgi(ASGIMiddleware(fastapi, client)) as api, \
            serve_asgi(ASGIMiddleware(silent_asgi, client)) as silent:  # fmt: skip
        assert call(f"{base}/stream", partner="contoso") == 200
        assert call(f"{base}/renamed") == 200
        assert call(f"{base}/missing") == 404
        assert call(f"{bare}/anything") == 500
        assert call(f"{named_base}/missing") == 404
        assert call(f"{api}/items/7", partner="contoso") == 200
        assert call(f"{silent}/x") == 500
    assert client.flush(timeout=30)
    client.close()

    events = {e["data"]["baseData"]["operationName"]: e for e in landed(receiver.landing_dir)}
    status = {name: e["data"]["baseData"]["requestStatus"] for name, e in events.items()}
    assert status == {"/stream": 3, "Renamed": 3, "/missing": 4, "/anything": 6, "Named": 4,
                      "/items/{item}": 3, "/x": 6}  # fmt: skip
    # The latency runs until the streamed body is sent, not until the handler returns.
    assert events["/stream"]["data"]["baseData"]["latencyMs"] >= 150
    assert events["/stream"]["data"]["cC"] == "ms.b.tel.partner=contoso"
    assert events["Renamed"]["data"]["cC"] == "ms.b.tel.scenario=set.on.scope"
    # The handler's correlation overrides the caller's baggage.
    assert events["/items/{item}"]["data"]["cC"] == "ms.b.tel.partner=from-the-handler"
    assert {e["data"]["baseData"]["requestType"] for e in events.values()} == {"GET"}
