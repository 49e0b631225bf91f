"""A quote service on Flask, instrumented with one line (`WSGIMiddleware`).

    TELEMETRY_CLIENT_TOKEN=demo-token python examples/flask_service.py --port 8081
    curl -H 'baggage: ms.b.tel.partner=contoso' http://127.0.0.1:8081/quotes/sku-1

Each request becomes one event: operation = the route (`/quotes/<sku>`), scenario = what the
handler says, partner = the caller's baggage. `?fail=1` answers 500, as a broken pricing
backend would; a 500 counts against the scenario's availability.
"""

import argparse

from flask import Flask, request

from telemetry_client import TelemetryClient, WSGIMiddleware, correlation


def create_app(client: TelemetryClient | None = None) -> Flask:
    app = Flask(__name__)
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, client)  # type: ignore[method-assign]

    @app.get("/quotes/<sku>")
    def quote(sku: str):  # type: ignore[no-untyped-def]
        with correlation(scenario="checkout.purchase_quote"):
            if request.args.get("fail"):
                return {"error": "pricing backend unavailable"}, 500
            return {"sku": sku, "price": 12.5}

    @app.post("/orders")
    def order():  # type: ignore[no-untyped-def]
        with correlation(scenario="checkout.place_order"):
            if request.args.get("fail"):
                raise RuntimeError("order store unavailable")
            return {"order": 1}, 201

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, create_app(), threaded=True)
