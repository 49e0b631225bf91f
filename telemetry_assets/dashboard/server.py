"""The dashboard over HTTP: a request reads the warehouse read-only, briefly, and renders; figures
whose files have not changed since an earlier request are reused (`cache.KeptFigures`)."""

import json
from datetime import date

import anyio
import duckdb
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from telemetry_assets.dashboard.cache import Kept, KeptFigures
from telemetry_assets.dashboard.data import (
    NoData,
    Selection,
    compose,
    day_reads,
    gather_day,
    gather_live,
    latest_selection,
    live_reads,
)
from telemetry_assets.dashboard.page import (
    PULSE_PATH,
    PULSE_STREAM_PATH,
    plotly_js,
    render,
    render_message,
)
from telemetry_assets.dashboard.statements import statement_routes
from telemetry_assets.lake import note_damage
from telemetry_assets.mood.burn_rates import MoodPolicy
from telemetry_assets.mood.pulse import current_pulse
from telemetry_assets.resources import MoodSettings, TelemetryStore
from telemetry_assets.tables import MINUTE_AGGREGATE, SCENARIOS

PLOTLY_PATH = "/static/plotly.min.js"


def selection_from(request: Request) -> Selection | None:
    """The reader's choice from the query string; None for the defaults (the latest day)."""
    query = request.query_params
    if "day" not in query:
        return None
    days = int(query.get("days", "7"))
    if not 1 <= days <= 366:
        raise ValueError("days must be between 1 and 366")
    return Selection(date.fromisoformat(query["day"]), days, query.get("scenario") or None)


def create_app(store: TelemetryStore | None = None, policy: MoodPolicy | None = None,
               pulse_poll_seconds: float = 5.0) -> Starlette:
    """The app; settings are read once, when it is created. The pulse stream looks for a new
    pulse every `pulse_poll_seconds` (a look at unchanged files reads nothing)."""
    lake = (store or TelemetryStore()).lake
    policy = policy or MoodSettings().policy
    kept = KeptFigures(lake)
    pages: Kept[str] = Kept()

    def page_for(selection: Selection | None) -> str:
        live = kept.read("live", live_reads(), lambda con: gather_live(con, policy))
        try:
            chosen = latest_selection(live.value, selection)
        except NoData as missing:
            note_damage(missing, live.damage)
            raise
        day = kept.read(("day", chosen), day_reads(chosen, policy),
                        lambda con: gather_day(con, chosen, policy),
                        days=[chosen.day])
        # Rendering the charts costs more than reading kept figures: a page is kept too.
        return pages.get(chosen, (live, day), lambda: render(
            compose(live.value, day.value, policy, live.damage + day.damage),
            plotly_src=PLOTLY_PATH))

    def page(request: Request) -> Response:
        try:
            selection = selection_from(request)
        except ValueError as error:
            return HTMLResponse(render_message("Bad request", str(error)), status_code=400)
        try:
            # The connection is closed before rendering: a reader never holds the warehouse long.
            html = page_for(selection)
        except (NoData, FileNotFoundError) as missing:
            said = "; ".join([str(missing), *getattr(missing, "__notes__", [])])
            return HTMLResponse(render_message("No data", said), status_code=404)
        except duckdb.Error as error:
            damage = lake.describe_damage(error)
            if damage is None:
                raise
            # Say which file, and how to repair it, rather than a bare server error.
            return HTMLResponse(render_message("A data file is damaged", damage + "."),
                                status_code=503)
        return HTMLResponse(html)

    def pulse_now() -> dict | None:
        reading = kept.read("pulse", {MINUTE_AGGREGATE: None, SCENARIOS: None},
                            lambda con: current_pulse(con, policy))
        return reading.value.as_json() if reading.value else None

    def pulse(_request: Request) -> Response:
        try:
            figures = pulse_now()
        except (FileNotFoundError, duckdb.CatalogException) as missing:
            return JSONResponse({"error": f"no pulse yet: {missing}"}, status_code=404)
        if figures is None:
            return JSONResponse({"error": "no pulse yet: no minute aggregates"}, status_code=404)
        return JSONResponse(figures)

    async def pulse_stream(_request: Request) -> Response:
        async def changes():
            sent: object = ()
            while True:
                try:
                    figures = await run_in_threadpool(pulse_now)
                except (FileNotFoundError, duckdb.CatalogException):
                    figures = None
                if figures != sent:
                    sent = figures
                    yield {"event": "pulse", "data": json.dumps(figures)}
                await anyio.sleep(pulse_poll_seconds)

        # A comment line now and then keeps proxies from closing a quiet stream.
        return EventSourceResponse(changes(), ping=15)

    def plotly(_request: Request) -> Response:
        return Response(plotly_js(), media_type="text/javascript",
                        headers={"Cache-Control": "max-age=86400"})

    def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    # Plain `def` endpoints run in Starlette's thread pool, so DuckDB work never blocks the loop.
    app = Starlette(routes=[
        Route("/", page),
        Route(PLOTLY_PATH, plotly),
        Route(PULSE_PATH, pulse),
        Route(PULSE_STREAM_PATH, pulse_stream),
        Route("/healthz", healthz),
        *statement_routes(lake),
    ])
    app.state.kept, app.state.pages = kept, pages
    return app
