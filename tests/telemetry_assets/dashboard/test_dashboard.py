"""The dashboard served on loopback, rendered by headless Chromium, read back against the warehouse.

One generated day (with the generator's incidents) runs through the real pipeline; the page's
numbers are read from the DOM Chromium holds after the page's JavaScript ran.
"""

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dagster import AssetSelection, evaluate_automation_conditions, materialize

from telemetry_assets.assets.present import dashboard, dashboard_path
from telemetry_assets.dashboard.data import Selection
from telemetry_assets.dashboard.server import create_app
from telemetry_assets.definitions import defs
from telemetry_assets.resources import RESOURCES
from tests.events import wire_event
from tests.helpers import HOSTILE, HTML_ID, SLACK_ID, serve_asgi
from tests.telemetry_assets.dashboard.conftest import DAY

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = ("minute_chart", "heatmap_chart", "daily_chart")


class PageReader(HTMLParser):
    """Table cells by section, row key and data-col; which charts Plotly drew; the selection."""

    def __init__(self):
        super().__init__()
        self.section: str | None = None
        self.row: str | None = None
        self.column: str | None = None
        self.cells: dict[tuple[str, str, str], str] = {}
        self.rows: dict[str, list[str]] = {}
        self.drawn: set[str] = set()
        self.chart: str | None = None
        self.selected: dict[str, str] = {}
        self.select: str | None = None
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.section = attributes.get("id")
        if tag == "tr":
            self.row = (attributes.get("data-scenario") or attributes.get("data-partner")
                        or (f"{attributes['data-kind']}/{attributes['data-reason']}"
                            if "data-kind" in attributes else None))
            if self.row:
                seen = self.rows.setdefault(self.section, [])
                # A scenario may have several incidents: later rows get "#2", "#3", ...
                repeats = sum(key.split("#")[0] == self.row for key in seen)
                self.row = f"{self.row}#{repeats + 1}" if repeats else self.row
                seen.append(self.row)
        if "data-col" in attributes:
            self.column = attributes["data-col"]
            self.cells.setdefault((self.section, self.row or "", self.column), "")
        if tag == "div" and attributes.get("id") in CHARTS:
            self.chart = attributes["id"]
        if tag == "svg" and "main-svg" in (attributes.get("class") or "") and self.chart:
            self.drawn.add(self.chart)
        if tag == "select":
            self.select = attributes.get("name")
        if tag == "option" and "selected" in attributes:
            self.selected[self.select] = attributes.get("value")
        if tag == "script":
            self.scripts.append(attributes)

    def handle_endtag(self, tag):
        if tag in ("td", "b", "span") and self.column:
            self.column = None
        if tag == "tr":
            self.row = None

    def handle_data(self, data):
        if self.column:
            key = (self.section, self.row or "", self.column)
            self.cells[key] += data.strip()

    def cell(self, section: str, row: str, column: str) -> str:
        return self.cells[(section, row, column)]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def chromium(tmp_path: Path, url: str, *action: str) -> str:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--hide-scrollbars",
         "--window-size=1400,1500", "--virtual-time-budget=15000", *action, url],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return result.stdout


def test_page_in_chromium_shows_the_published_numbers(platform, published_day, served,
                                                       tmp_path):
    url = f"{served}/?day=2026-11-20&days=7"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    chromium(tmp_path, url, f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 50_000
    page = PageReader()
    page.feed(chromium(tmp_path, url, "--dump-dom"))

    # Plotly ran from the server itself (no CDN) and drew every chart.
    assert page.drawn == set(CHARTS)
    assert [s.get("src") for s in page.scripts if s.get("src")] == ["/static/plotly.min.js"]

    published = {row["scenario_id"]: row for row in platform.query(
        "select * from published.scenario_daily where date = date '2026-11-20'")}
    assert len(published) > 20
    assert set(page.rows["scenarios"]) == set(published)
    for scenario, row in published.items():
        shown = lambda column, scenario=scenario: page.cell("scenarios", scenario, column)  # noqa: E731
        assert number(shown("total_requests")) == row["total_requests"]
        assert number(shown("failed_requests")) == row["failed_requests"]
        assert shown("availability_pct") == f"{row['availability_pct']:.3f}"
        assert float(shown("slo_target_pct")) == row["slo_target_pct"]
        assert shown("p95_latency_ms") == f"{row['p95_latency_ms']:,.0f}"
        # One day published: the 7 days to it and the 28-day budget are that day's figures.
        assert shown("range_availability_pct") == f"{row['availability_pct']:.3f}"
        assert shown("range_days_met") == ("1/1" if row["slo_met"] else "0/1")
        allowed = row["total_requests"] * (100 - row["slo_target_pct"]) / 100
        remaining = 100 * (1 - row["failed_requests"] / allowed)
        assert shown("budget_remaining_pct") == f"{remaining:.1f}"
        p50, p99 = number(shown("p50_latency_ms")), number(shown("p99_latency_ms"))
        assert p50 <= row["p95_latency_ms"] + 0.5 and p99 >= row["p95_latency_ms"] - 0.5

    chosen = page.selected["scenario"]
    partners = platform.query(f"""
        select partner_id, total_requests, failed_requests, availability_pct
        from published.scenario_partner_daily
        where date = date '2026-11-20' and scenario_id = '{chosen}'
        order by failed_requests desc, availability_pct, partner_id limit 15
    """)
    assert page.rows["partners"] == [row["partner_id"] for row in partners]
    for row in partners:
        assert number(page.cell("partners", row["partner_id"], "total_requests")) == \
            row["total_requests"]
        assert number(page.cell("partners", row["partner_id"], "failed_requests")) == \
            row["failed_requests"]
        assert page.cell("partners", row["partner_id"], "availability_pct") == \
            f"{row['availability_pct']:.3f}"

    outcomes = {row["outcome"]: row["events"] for row in platform.query(
        "select outcome, sum(events) as events from staging.event_outcomes group by all")}
    assert number(page.cell("quality", "", "kept")) == outcomes.pop("kept")
    assert number(page.cell("quality", "", "excluded-total")) == sum(outcomes.values())
    for reason, events in outcomes.items():
        assert number(page.cell("quality", f"excluded/{reason}", "count")) == events
    rejected = {row["reason"]: row["lines"] for row in platform.query(
        "select reason, count(*) as lines from quarantine.rejected_events group by all")}
    assert number(page.cell("quality", "", "quarantined-total")) == \
        published_day.malformed_lines == sum(rejected.values())
    for reason, lines in rejected.items():
        assert number(page.cell("quality", f"quarantined/{reason}", "count")) == lines

    assert number(page.cell("quality", "", "unread-total")) == 3
    for reason in ("not in a date=YYYY-MM-DD/hour=HH folder", "not a .jsonl or .jsonl.gz file",
                   "before the first partition (2026-01-01)"):
        assert number(page.cell("quality", f"unread files/{reason}", "count")) == 1

    # The generator's incidents are on the page: 20 to 60 % errors page within minutes, so
    # each is listed for its scenario, starting during it.
    listed = [(key.split("#")[0], page.cell("incidents", key, "start"))
              for key in page.rows.get("incidents", [])]
    assert published_day.incidents
    for incident in published_day.incidents:
        assert any(
            scenario == incident.scenario_id
            and f"{incident.start:%H:%M}" <= start <= f"{incident.end:%H:%M}"
            for scenario, start in listed
        ), (incident, listed)
    assert chosen in {scenario for scenario, _ in listed}


def test_asset_is_rebuilt_when_the_published_tables_change_as_a_self_contained_page(
    platform, published_day
):
    def requested(cursor=None):
        result = evaluate_automation_conditions(
            defs=defs, instance=platform.instance, cursor=cursor,
            asset_selection=AssetSelection.assets("dashboard"),
        )
        return result.total_requested, result.cursor

    count, cursor = requested()  # the first evaluation only takes stock
    assert count == 0
    platform.run_days("2026-11-20")
    count, cursor = requested(cursor)
    assert count == 1  # the published tables changed

    result = materialize([dashboard], instance=platform.instance,
                         resources=RESOURCES)
    assert result.success
    count, cursor = requested(cursor)
    assert count == 0  # up to date

    path = dashboard_path(platform.settings)
    html = path.read_text()
    # Plotly inlined: the file opens offline, from disk, with no server.
    assert "<script src=" not in html and "Plotly.newPlot" in html and len(html) > 3_000_000
    (materialization,) = result.asset_materializations_for_node("dashboard")
    metadata = materialization.metadata
    assert metadata["day"].value == "2026-11-20"
    assert metadata["path"].value == str(path.absolute())
    assert "| scenario | state |" in metadata["mood"].value


def test_server_answers_without_data_and_rejects_bad_input(platform, served):
    for query, status in (("/", 404), ("/?day=2026-11-20&days=0", 400),
                          ("/?day=yesterday", 400), ("/healthz", 200)):
        try:
            with urllib.request.urlopen(served + query) as response:
                code = response.status
        except urllib.error.HTTPError as error:
            code = error.code
        assert (query, code) == (query, status)


class Links(HTMLParser):
    """Every tag and link target (HTML `href` or SVG `xlink:href`) of a DOM, and the text of
    each section, as a reader sees it."""

    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.targets: list[str] = []
        self.section: str | None = None
        self.text: dict[str | None, str] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.targets += [value for name, value in attrs if name in ("href", "xlink:href")]
        if tag == "section":
            self.section = dict(attrs).get("id")

    def handle_data(self, data):
        self.text[self.section] = self.text.get(self.section, "") + data


def test_reference_names_are_text_on_the_page_and_in_its_charts(platform, hostile_day, served,
                                                                 tmp_path):
    from telemetry_assets.mood.burn_rates import current_mood
    from telemetry_assets.mood.outbox import notify_changes
    from telemetry_assets.resources import MoodSettings

    with platform.lake.warehouse(read_only=True) as con:
        report = current_mood(con, MoodSettings().policy)
    assert {m.state for m in report.scenarios} == {"breaching"}
    notify_changes(platform.lake, report, [])  # recorded, so listed on the page

    url = f"{served}/?day=2026-11-20&days=7&scenario={urllib.parse.quote(HTML_ID)}"
    with urllib.request.urlopen(url) as response:
        html = response.read().decode()
    assert '<a href="https://evil.example"' not in html and "<b>bold" not in html

    page = Links()
    page.feed(chromium(tmp_path, url, "--dump-dom"))
    assert {"svg", "tspan"} <= page.tags  # Plotly drew the charts
    assert not [target for target in page.targets if "://evil.example" in target]
    # The ids read as they are: on the heatmap's axis and in the chosen scenario's titles.
    assert all(scenario_id in page.text["heatmap"] for scenario_id in HOSTILE)
    assert HTML_ID in page.text["minute"] and HTML_ID in page.text["daily"]
    # A notification's Slack escaping (&lt;) is not what a reader of the page sees.
    assert f"{SLACK_ID} ({HOSTILE[SLACK_ID]}) is breaching" in page.text["notifications"]


def test_a_day_is_read_once_until_a_rerun_changes_it(platform, published_day, monkeypatch):
    monkeypatch.setenv("TELEMETRY_MOOD_MIN_REQUESTS", "5")
    app = create_app()
    kept = app.state.kept
    the_day = ("day", Selection(DAY.date()))

    def scenario_totals(url: str) -> dict[str, tuple[int, int]]:
        with urllib.request.urlopen(f"{url}/?day=2026-11-20") as response:
            page = PageReader()
            page.feed(response.read().decode())
        return {row: (number(page.cell("scenarios", row, "total_requests")),
                      number(page.cell("scenarios", row, "failed_requests")))
                for row in page.rows["scenarios"]}

    with serve_asgi(app) as url:
        before = scenario_totals(url)
        assert kept.made == ["live", the_day]
        assert scenario_totals(url) == before
        assert kept.made == ["live", the_day]  # the second look read nothing,
        assert len(app.state.pages.made) == 1  # and rendered nothing

        # The next day's hours and day: the latest figures change, the 20th's do not.
        platform.run_hours(*[f"2026-11-21-{hour:02d}:00" for hour in range(24)])
        platform.run_days("2026-11-21")
        assert scenario_totals(url) == before
        assert kept.made == ["live", the_day, "live"]
        # The new day had no traffic: the latest figures read again came out the same, and so
        # the page is the one already rendered.
        assert len(app.state.pages.made) == 1

        # A late file for an hour of the 20th, and the re-runs the late-data sensor launches.
        scenario = sorted(before)[0]
        late = platform.settings.landing_dir / "events" / "date=2026-11-20" / "hour=10"
        (late / "late.jsonl").write_text("".join(
            json.dumps(wire_event(
                f"late-{n}", time=f"2026-11-20T10:{n:02d}:00.000Z", status=7,
                cc=f"ms.b.tel.scenario={scenario};ms.b.tel.partner=contoso",
            )) + "\n" for n in range(25)))
        platform.run_hours("2026-11-20-10:00")
        platform.run_days("2026-11-20")
        after = scenario_totals(url)
        assert after[scenario] == (before[scenario][0] + 25, before[scenario][1] + 25)
        assert {s: t for s, t in after.items() if s != scenario} == \
            {s: t for s, t in before.items() if s != scenario}
        assert kept.made == ["live", the_day, "live", "live", the_day]
        assert len(app.state.pages.made) == 2
