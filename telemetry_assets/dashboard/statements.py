"""The dashboard's /statements page: every SLA statement version issued, and its files."""

import re
from dataclasses import asdict
from functools import cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from telemetry_assets.dashboard.page import TEMPLATES, render_message
from telemetry_assets.lake import Lake
from telemetry_assets.sla.issue import FILES, issued_versions, statements_root

STATEMENTS_PATH = "/statements"
_MONTH = re.compile(r"\d{4}-\d{2}")
_VERSION = re.compile(r"v[1-9][0-9]*")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf",
               ".csv": "text/csv; charset=utf-8", ".json": "application/json"}


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    return environment.get_template("statements.html.j2")


def version_href(directory: Path) -> str:
    """The URL of a version folder: its month, escaped partner folder and version, each one
    path segment (a partner folder's own escapes escaped again, since the server decodes once)."""
    partner = directory.parent.name.removeprefix("partner=")
    month = directory.parent.parent.name.removeprefix("month=")
    return f"{STATEMENTS_PATH}/{month}/{quote(partner, safe='')}/{directory.name}"


def render_statements(root: Path) -> str:
    versions = [{**asdict(v), "href": version_href(v.directory)} for v in issued_versions(root)]
    return _template().render(versions=versions, root=root)


def statement_routes(lake: Lake) -> list[Route]:
    root = statements_root(lake)

    def listing(_request: Request) -> Response:
        return HTMLResponse(render_statements(root))

    def statement_file(request: Request) -> Response:
        month, partner = request.path_params["month"], request.path_params["partner"]
        version, name = request.path_params["version"], request.path_params["name"]
        # Each part is checked, so a request names a file of a version folder or nothing.
        if not (_MONTH.fullmatch(month) and _VERSION.fullmatch(version) and name in FILES
                and "/" not in partner and "\0" not in partner):
            return HTMLResponse(render_message("Not found", "No such statement file."),
                                status_code=404)
        path = root / f"month={month}" / f"partner={partner}" / version / name
        if not path.is_file():
            return HTMLResponse(render_message("Not found", "No such statement file."),
                                status_code=404)
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])

    return [
        Route(STATEMENTS_PATH, listing),
        Route(STATEMENTS_PATH + "/{month}/{partner}/{version}/{name}", statement_file),
    ]
