"""A quote service on FastAPI, instrumented with one line (`ASGIMiddleware`).

    TELEMETRY_CLIENT_TOKEN=demo-token python examples/fastapi_service.py --port 8082
    curl -H 'baggage: ms.b.tel.partner=contoso' http://127.0.0.1:8082/quotes/sku-1

The same service as examples/flask_service.py: operation = the route (`/quotes/{sku}`),
scenario = what the handler says, partner = the caller's baggage, `?fail=1` answers 500.
"""

import argparse

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from telemetry_client import ASGIMiddleware, TelemetryClient, correlation


def create_app(client: TelemetryClient | None = None) -> FastAPI:
    app = FastAPI(openapi_url=None)
    app.add_middleware(ASGIMiddleware, client=client)

    @app.get("/quotes/{sku}")
    async def quote(sku: str, fail: bool = False) -> JSONResponse:
        with correlation(scenario="checkout.purchase_quote"):
            if fail:
                return JSONResponse({"error": "pricing backend unavailable"}, status_code=500)
            return JSONResponse({"sku": sku, "price": 12.5})

    @app.post("/orders", status_code=201)
    def order(fail: bool = False) -> dict:
        with correlation(scenario="checkout.place_order"):
            if fail:
                raise RuntimeError("order store unavailable")
            return {"order": 1}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
