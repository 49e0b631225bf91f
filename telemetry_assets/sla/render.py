"""A statement document (the statement.json of a version) as printable HTML, as CSV, and as PDF
printed by headless Chromium."""

import csv
import io
import shutil
import subprocess
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Shown for a figure that does not exist (no requests counted, nothing expected).
MISSING = "\u2013"
PDF_TIMEOUT_S = 60.0

CSV_COLUMNS = (
    "month", "partner_id", "partner_name", "tier", "version", "preliminary", "scenario_id",
    "scenario_name", "commitment_pct", "attainment_pct", "met", "total_requests",
    "successful_requests", "failed_requests", "excluded_minutes", "excluded_requests",
    "expected_minutes", "received_minutes", "completeness_pct", "credit_pct",
)


def percent(value: Any, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def number(value: Any) -> str:
    return MISSING if value is None else f"{value:,}"


def month_name(month: str) -> str:
    return f"{datetime.strptime(month, '%Y-%m'):%B %Y}"


def moment(text: str | None) -> str:
    """An ISO-8601 UTC time as the statement prints it."""
    if not text:
        return MISSING
    return f"{datetime.fromisoformat(text.replace('Z', '+00:00')):%Y-%m-%d %H:%M} UTC"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters.update(percent=percent, number=number, month_name=month_name,
                               moment=moment)
    return environment


def render_html(document: dict[str, Any]) -> str:
    return _environment().get_template("statement.html.j2").render(doc=document,
                                                                   figures=document["figures"])


def render_csv(document: dict[str, Any]) -> str:
    """One row per scenario, each with the statement's month, partner and version."""
    figures = document["figures"]
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in figures["scenarios"]:
        writer.writerow({
            **{column: line.get(column) for column in CSV_COLUMNS},
            "month": figures["month"], "partner_id": figures["partner_id"],
            "partner_name": figures["partner_name"] or "", "tier": figures["tier"] or "",
            "version": document["version"], "preliminary": figures["preliminary"],
        })
    return out.getvalue()


def find_chromium() -> str | None:
    """Debian's chromium (or a chromium-browser), as the dashboard's tests find it."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_pdf(html_path: Path, pdf_path: Path, timeout_s: float = PDF_TIMEOUT_S) -> str | None:
    """Print the HTML file to `pdf_path`; None when done, else why it was not."""
    chromium = find_chromium()
    if chromium is None:
        return ("chromium is not installed (no chromium or chromium-browser on PATH): install "
                "Debian's chromium, e.g. `make system-packages`")
    # A profile of its own: printers running at once never share one.
    with tempfile.TemporaryDirectory(prefix="statement-chromium-") as profile:
        try:
            done = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 f"--print-to-pdf={pdf_path}", html_path.absolute().as_uri()],
                capture_output=True, text=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            pdf_path.unlink(missing_ok=True)
            return f"chromium did not print the PDF within {timeout_s:g} s"
        except OSError as error:
            return f"chromium could not be started: {error}"
    if done.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        pdf_path.unlink(missing_ok=True)
        said = [line for line in done.stderr.splitlines() if line.strip()][-1:]
        return f"chromium exited with {done.returncode} without a PDF" + (
            f": {said[0]}" if said else "")
    return None
