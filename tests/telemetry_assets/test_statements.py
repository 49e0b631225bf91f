"""Monthly partner SLA statements: generated traffic through the real pipeline, statements
issued, re-issued after a late landing file, printed to PDF and served; and the pure pieces
(minutes, the SQL on literal rows, credits, versions, concurrent issuers)."""

import csv
import fnmatch
import hashlib
import json
import shutil
import struct
import subprocess
import threading
import urllib.error
import urllib.request
import zlib
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from telemetry_assets.dashboard.server import create_app
from telemetry_assets.lake import Lake
from telemetry_assets.sla import issue as issuing
from telemetry_assets.sla.figures import (
    Line,
    MinuteCounts,
    Statement,
    compute_statements,
    minute_counts,
    minute_spans,
    processed_hours,
    processed_spans,
)
from telemetry_assets.sla.issue import IssueContext, issue, partner_dir, versions
from telemetry_assets.sla.render import find_chromium
from telemetry_assets.tables import CUSTOMERS, MINUTE_AGGREGATE, SCENARIOS
from telemetry_cli.launcher import backfill, plan_backfill
from telemetry_cli.main import main
from telemetry_core.annotations import AnnotationStore
from telemetry_core.slos import CreditStep, MaintenanceWindow, Objective, SloCatalog
from telemetry_core.sql import compute_connection
from telemetry_synth import generate_landing
from tests.events import wire_event
from tests.helpers import serve_asgi, write_landing

# A generated month backfilled, issued and reissued.
pytestmark = pytest.mark.minutes(4.5)

NOVEMBER = (datetime(2026, 11, 1), datetime(2026, 12, 1))
NOVEMBER_MINUTES = 30 * 24 * 60


# ---------------------------------------------------------------------------------------------
# Minutes: exclusions, expected and received
# ---------------------------------------------------------------------------------------------

def test_a_minute_is_excluded_when_its_start_lies_in_the_window():
    at = datetime(2026, 11, 14, 2)
    assert minute_spans([(at, at + timedelta(seconds=30))], NOVEMBER) == [
        (at, at + timedelta(minutes=1))]
    # 02:00:30 is not a minute start: 02:01 is the first minute whose start lies in it.
    assert minute_spans([(at + timedelta(seconds=30), at + timedelta(minutes=3))], NOVEMBER) == [
        (at + timedelta(minutes=1), at + timedelta(minutes=3))]
    assert minute_spans([(at, at)], NOVEMBER) == []


def test_overlapping_windows_count_once_and_are_clipped_to_the_month():
    windows = [
        (datetime(2026, 10, 31, 23), datetime(2026, 11, 1, 1)),  # starts in October
        (datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 2)),  # overlaps the first
        (datetime(2026, 11, 30, 23, 50), datetime(2026, 12, 1, 5)),  # ends in December
        (datetime(2026, 12, 2), datetime(2026, 12, 3)),  # outside
    ]
    assert minute_spans(windows, NOVEMBER) == [
        (datetime(2026, 11, 1), datetime(2026, 11, 1, 2)),
        (datetime(2026, 11, 30, 23, 50), datetime(2026, 12, 1)),
    ]


def test_expected_and_received_minutes_leave_out_the_excluded_ones():
    window = MaintenanceWindow(datetime(2026, 11, 14, 2, 30), datetime(2026, 11, 14, 3, 30))
    hours = [datetime(2026, 11, 14, 2), datetime(2026, 11, 14, 3), datetime(2026, 11, 20, 5)]
    counts = minute_counts(NOVEMBER, [window], processed_spans(hours, NOVEMBER))
    assert counts == MinuteCounts(excluded=60, expected=NOVEMBER_MINUTES - 60, received=120)
    assert counts.completeness_pct == pytest.approx(100 * 120 / (NOVEMBER_MINUTES - 60))
    everything = MaintenanceWindow(datetime(2026, 10, 1), datetime(2026, 12, 31))
    assert minute_counts(NOVEMBER, [everything], []).completeness_pct is None


CATALOG = SloCatalog(
    objectives=(
        Objective("checkout.quote", "availability", "availability", 99.9,
                  tier_targets=(("gold", 99.95),)),
        Objective("search.query", "availability", "availability", 99.5),
    ),
    credits=(CreditStep(99.9, 10.0), CreditStep(99.0, 25.0)),
    maintenance=(
        MaintenanceWindow(datetime(2026, 11, 14, 2), datetime(2026, 11, 14, 2, 30, 30),
                          "checkout.*", "*", "upgrade"),
        MaintenanceWindow(datetime(2026, 11, 20), datetime(2026, 11, 21), "*", "fabrikam",
                          "freeze"),
    ),
)


@pytest.mark.parametrize(
    ("attainment", "commitment", "credit"),
    [(None, 99.95, 0.0), (100.0, 99.95, 0.0), (99.95, 99.95, 0.0), (99.94, 99.95, 0.0),
     (99.899, 99.95, 10.0), (99.0, 99.95, 10.0), (98.999, 99.95, 25.0), (0.0, 99.5, 25.0),
     (99.4, 99.5, 10.0)],
)
def test_credit_is_the_largest_step_below_only_when_the_commitment_is_missed(
        attainment, commitment, credit):
    # A miss above every step (99.94 against 99.95) owes nothing: the schedule says so.
    assert CATALOG.credit_pct(attainment, commitment) == credit


# ---------------------------------------------------------------------------------------------
# The SQL and the statements on literal minute rows
# ---------------------------------------------------------------------------------------------

MINUTE_COLUMNS = ["scenario_id", "partner_id", "minute", "total_requests", "successful_requests"]


def literal_lake(root: Path, rows: list[tuple], hours: list[datetime]) -> Lake:
    """A lake with two scenarios, two customers and a minute_aggregate file for each of
    `hours`, holding the rows listed for it (a row may lie outside its file's hour)."""
    lake = Lake(root / "lake", root / "warehouse.duckdb")
    with closing(compute_connection()) as con:
        lake.write(SCENARIOS, None, con.from_df(pd.DataFrame(
            [("checkout.quote", "Purchase quote", "checkout", 99.9, "ST-1"),
             ("search.query", "Search", "search", 99.5, "ST-2")],
            columns=["scenario_id", "scenario_name", "service", "slo_target_pct", "stid"])))
        lake.write(CUSTOMERS, None, con.from_df(pd.DataFrame(
            [("contoso", "Contoso", "gold"), ("fabrikam", "Fabrikam", "silver")],
            columns=["partner_id", "partner_name", "tier"])))
        for hour in hours:
            frame = pd.DataFrame([row[1:] for row in rows if row[0] == hour],
                                 columns=MINUTE_COLUMNS).astype({
                "scenario_id": "string", "partner_id": "string", "minute": "datetime64[us]",
                "total_requests": "int64", "successful_requests": "int64"})
            lake.write(MINUTE_AGGREGATE, hour, con.from_df(frame))
    return lake


H0, H1 = datetime(2026, 11, 1, 0), datetime(2026, 11, 1, 1)
MAINTENANCE_HOUR, LAST_HOUR = datetime(2026, 11, 14, 2), datetime(2026, 11, 30, 23)
LITERAL_ROWS = [
    # In H0's file: the month's first minute, and one of October that the window leaves out.
    (H0, "checkout.quote", "contoso", datetime(2026, 11, 1, 0, 0), 100, 99),
    (H0, "checkout.quote", "contoso", datetime(2026, 10, 31, 23, 59), 1000, 0),
    # Spelled as events spell them: matched trimmed and case-insensitively.
    (H0, "  Checkout.Quote ", "CONTOSO ", datetime(2026, 11, 1, 0, 5), 50, 50),
    (H0, "search.query", "contoso", datetime(2026, 11, 1, 0, 7), 10, 9),
    (H0, "mystery.flow", "contoso", datetime(2026, 11, 1, 0, 8), 10, 0),  # not a reference one
    (H0, "search.query", " Initech", datetime(2026, 11, 1, 0, 9), 4, 4),  # not a customer
    # The maintenance window [02:00, 02:30:30) of checkout.*: 02:00 and 02:30 in, 01:59 and
    # 02:31 out (01:59 is in H1's file, out of place on purpose).
    (H1, "checkout.quote", "fabrikam", datetime(2026, 11, 14, 1, 59), 20, 20),
    (MAINTENANCE_HOUR, "checkout.quote", "fabrikam", datetime(2026, 11, 14, 2, 0), 30, 0),
    (MAINTENANCE_HOUR, "checkout.quote", "fabrikam", datetime(2026, 11, 14, 2, 30), 7, 0),
    (MAINTENANCE_HOUR, "checkout.quote", "fabrikam", datetime(2026, 11, 14, 2, 31), 200, 199),
    (MAINTENANCE_HOUR, "search.query", "fabrikam", datetime(2026, 11, 14, 2, 10), 5, 5),
    # The month's last minute is in; December's first is not.
    (LAST_HOUR, "checkout.quote", "fabrikam", datetime(2026, 11, 30, 23, 59), 3, 3),
    (LAST_HOUR, "checkout.quote", "fabrikam", datetime(2026, 12, 1, 0, 0), 500, 0),
]
LITERAL_HOURS = [H0, H1, MAINTENANCE_HOUR, LAST_HOUR]


def november(lake: Lake, **options) -> dict[str, Statement]:
    from telemetry_assets.partitions import monthly_partitions

    window = monthly_partitions.time_window_for_partition_key("2026-11")
    return {s.partner_id: s for s in compute_statements(
        lake, CATALOG, "2026-11", window, datetime(2026, 12, 2, tzinfo=UTC), **options)}


def test_statement_figures_on_literal_rows_cover_both_month_edges_and_the_window(tmp_path):
    lake = literal_lake(tmp_path, LITERAL_ROWS, LITERAL_HOURS)
    statements = november(lake)
    assert sorted(statements) == ["contoso", "fabrikam", "initech"]
    received = 4 * 60  # four processed hours

    contoso = {line.scenario_id: line for line in statements["contoso"].lines}
    assert statements["contoso"].tier == "gold" and statements["contoso"].flags == []
    quote = contoso["checkout.quote"]
    assert (quote.total_requests, quote.successful_requests, quote.excluded_requests) == (
        150, 149, 0)
    assert quote.commitment_pct == 99.95  # gold
    assert quote.attainment_pct == pytest.approx(100 * 149 / 150)
    assert quote.credit_pct == 10.0  # 99.33 %
    # The checkout window's 31 minutes (02:00 to 02:30) lie in a processed hour.
    assert quote.minutes == MinuteCounts(31, NOVEMBER_MINUTES - 31, received - 31)
    search = contoso["search.query"]
    assert (search.total_requests, search.successful_requests, search.credit_pct) == (10, 9, 25.0)
    assert search.minutes == MinuteCounts(0, NOVEMBER_MINUTES, received)

    fabrikam = {line.scenario_id: line for line in statements["fabrikam"].lines}
    quote = fabrikam["checkout.quote"]
    assert (quote.total_requests, quote.successful_requests, quote.excluded_requests) == (
        223, 222, 37)
    assert quote.commitment_pct == 99.9  # silver: the scenario's own target
    assert quote.credit_pct == 10.0  # 99.55 %
    # The checkout window and the whole of November 20 (fabrikam's freeze, not processed).
    assert quote.minutes == MinuteCounts(31 + 1440, NOVEMBER_MINUTES - 31 - 1440, received - 31)
    search = fabrikam["search.query"]
    assert (search.total_requests, search.excluded_requests, search.credit_pct) == (5, 0, 0.0)
    assert search.minutes == MinuteCounts(1440, NOVEMBER_MINUTES - 1440, received)
    assert [w.reason for w in statements["fabrikam"].maintenance] == ["upgrade", "freeze"]

    initech = statements["initech"]
    assert (initech.known_partner, initech.tier, initech.partner_name) == (False, None, None)
    assert initech.flags == ["unknown partner"]
    assert [(line.scenario_id, line.total_requests, line.commitment_pct)
            for line in initech.lines] == [("search.query", 4, 99.5)]


def test_only_the_partners_asked_for_and_nothing_without_processed_hours(tmp_path):
    lake = literal_lake(tmp_path / "a", LITERAL_ROWS, LITERAL_HOURS)
    assert sorted(november(lake, partners=[" FABRIKAM"])) == ["fabrikam"]
    assert november(literal_lake(tmp_path / "b", [], [])) == {}
    # A processed hour without traffic counts as received, and makes no statement by itself.
    empty = literal_lake(tmp_path / "c", [], [H0])
    assert processed_hours(empty, _november_window()) == [H0.replace(tzinfo=UTC)]
    assert november(empty) == {}


def test_an_open_month_is_preliminary_and_its_final_statement_is_the_next_version(tmp_path):
    lake = literal_lake(tmp_path, LITERAL_ROWS, LITERAL_HOURS)
    mid_month = datetime(2026, 11, 20, 12, tzinfo=UTC)
    statements = {s.partner_id: s for s in compute_statements(
        lake, CATALOG, "2026-11", _november_window(), mid_month)}
    assert all(s.preliminary for s in statements.values())
    root = tmp_path / "statements"
    first = issue(statements["initech"], root, CONTEXT, pdf=None)
    assert first.document["status"] == "preliminary"
    html = (first.directory / "statement.html").read_text()
    assert "PRELIMINARY" in html and "Preliminary." in html and "Unknown partner." in html
    assert "tier" in html and ">none<" in html

    final = november(lake)["initech"]
    assert final.figures()["scenarios"] == statements["initech"].figures()["scenarios"]
    second = issue(final, root, CONTEXT, pdf=None)
    assert (second.version, second.document["status"]) == (2, "final")
    assert second.document["revision"]["statement"] == [
        {"figure": "preliminary", "old": True, "new": False}]
    assert second.document["revision"]["scenarios"] == []
    html = (second.directory / "statement.html").read_text()
    assert "status: preliminary → final" in html and "Preliminary." not in html


def _november_window():
    from telemetry_assets.partitions import monthly_partitions

    return monthly_partitions.time_window_for_partition_key("2026-11")


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------

def a_statement(total: int = 1000, successful: int = 999, partner: str = "contoso") -> Statement:
    line = Line("checkout.quote", "Purchase quote", 99.95, total, successful, 3,
                MinuteCounts(31, NOVEMBER_MINUTES - 31, 1000),
                CATALOG.credit_pct(100 * successful / total, 99.95))
    return Statement("2026-11", *NOVEMBER, partner, "Contoso", "gold", True, False, (line,))


CONTEXT = IssueContext("run-1", datetime(2026, 12, 2, 1, tzinfo=UTC),
                       issuing.catalog_identity(CATALOG), {"minute_aggregate_hours": 720,
                                                           "identities_sha256": "0" * 64,
                                                           "files": []})


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_same_figures_issue_nothing_new_and_changed_ones_the_next_version(tmp_path):
    first = issue(a_statement(), tmp_path, CONTEXT, pdf=None)
    assert (first.version, first.new) == (1, True)
    v1 = folder_bytes(first.directory)
    assert sorted(v1) == ["statement.csv", "statement.html", "statement.json"]
    assert first.pdf_error == "PDF printing is off for this issue"

    again = issue(a_statement(), tmp_path, replace(CONTEXT, run_id="run-2"), pdf=None)
    assert (again.version, again.new) == (1, False)

    second = issue(a_statement(total=1010, successful=1005), tmp_path,
                   replace(CONTEXT, run_id="run-3"), pdf=None)
    assert (second.version, second.new) == (2, True)
    assert versions(second.directory.parent) == [1, 2]
    assert folder_bytes(first.directory) == v1
    revision = second.document["revision"]
    assert revision["previous_version"] == 1 and revision["statement"] == []
    (change,) = revision["scenarios"]
    assert change["total_requests"] == [1000, 1010]
    assert change["attainment_pct"] == [pytest.approx(99.9), pytest.approx(100 * 1005 / 1010)]
    assert change["credit_pct"] == [0.0, 10.0]
    assert change["also_changed"] == ["failed_requests", "successful_requests"]
    html = (second.directory / "statement.html").read_text()
    assert "Revision of v1" in html and "1,000 → 1,010" in html
    # Nothing half-written is left beside the versions.
    assert sorted(p.name for p in second.directory.parent.iterdir()) == ["v1", "v2"]


@pytest.mark.parametrize(("partner", "folder"), [
    ("a/b", "partner=a%2Fb"), ("..", "partner=.."), ("50%", "partner=50%25"),
    ("Contoso EU", "partner=Contoso%20EU"),
])
def test_a_partner_id_is_always_one_folder(tmp_path, partner, folder):
    assert partner_dir(tmp_path, "2026-11", partner) == tmp_path / "month=2026-11" / folder


def racing_publish(monkeypatch, parties: int) -> None:
    """Every issuer's first rename waits until all of them have written their version."""
    barrier = threading.Barrier(parties, timeout=30)
    first_call: set[int] = set()
    publish = issuing._publish

    def held(temporary: Path, target: Path) -> bool:
        if threading.get_ident() not in first_call:
            first_call.add(threading.get_ident())
            barrier.wait()
        return publish(temporary, target)

    monkeypatch.setattr(issuing, "_publish", held)


def issue_at_once(tmp_path: Path, statements: list[Statement]) -> list:
    results: list = [None] * len(statements)

    def run(index: int) -> None:
        results[index] = issue(statements[index], tmp_path, CONTEXT, pdf=None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(statements))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_issuers_never_both_create_the_same_version(tmp_path, monkeypatch):
    issue(a_statement(), tmp_path, CONTEXT, pdf=None)
    racing_publish(monkeypatch, 3)
    results = issue_at_once(tmp_path, [a_statement(total=1010), a_statement(total=1020),
                                       a_statement(total=1030)])
    directory = partner_dir(tmp_path, "2026-11", "contoso")
    assert versions(directory) == [1, 2, 3, 4]
    assert sorted(r.version for r in results) == [2, 3, 4] and all(r.new for r in results)
    # Each states its difference from the version it follows, whoever won.
    for result in results:
        document = json.loads((result.directory / "statement.json").read_text())
        assert document["revision"]["previous_version"] == result.version - 1
        before = json.loads((directory / f"v{result.version - 1}" / "statement.json")
                            .read_text())["figures"]["scenarios"][0]["total_requests"]
        assert document["revision"]["scenarios"][0]["total_requests"][0] == before
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_concurrent_issuers_of_equal_figures_make_one_version(tmp_path, monkeypatch):
    issue(a_statement(), tmp_path, CONTEXT, pdf=None)
    racing_publish(monkeypatch, 2)
    results = issue_at_once(tmp_path, [a_statement(total=1010), a_statement(total=1010)])
    assert versions(partner_dir(tmp_path, "2026-11", "contoso")) == [1, 2]
    assert sorted((r.version, r.new) for r in results) == [(2, False), (2, True)]


def test_without_chromium_the_statement_is_issued_and_says_why_there_is_no_pdf(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    issued = issue(a_statement(), tmp_path, CONTEXT)
    assert sorted(issued.files()) == ["statement.csv", "statement.html", "statement.json"]
    assert issued.pdf_error.startswith("chromium is not installed")
    document = json.loads((issued.directory / "statement.json").read_text())
    assert document["pdf"] == {"rendered": False, "reason": issued.pdf_error}
    assert document["files"]["pdf"] is None


def test_cli_rejects_a_month_that_is_not_one():
    assert "--partner" in CliRunner().invoke(main, ["statement", "--help"]).output
    for month, said in [("2026-1", "is not a month"), ("2026-13", "is not a month"),
                        ("2025-12", "before the first month"), ("2999-01", "has not begun")]:
        result = CliRunner().invoke(main, ["statement", "--month", month])
        assert result.exit_code == 2 and said in result.output, result.output
        assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# End to end: a generated month, the pipeline, statements, late data, a second version
# ---------------------------------------------------------------------------------------------

SCENARIOS_CSV = """scenario_id,scenario_name,service,slo_target_pct,stid
checkout.purchase_quote,Purchase quote,checkout,99.9,ST-1
search.query,Search,search,99.5,ST-2
"""
CUSTOMERS_CSV = """partner_id,partner_name,tier
contoso,Contoso,gold
fabrikam,Fabrikam,silver
"""
OPERATIONS_CSV = """operation_name,scenario_id
GetQuote,checkout.purchase_quote
RunSearch,search.query
"""
# The checkout window ends at 04:00:30: the minute 04:00 starts inside it, 04:01 does not.
# contoso's freeze is a whole day: excluded, so neither expected nor counted.
SLOS_YAML = """
objectives:
  - scenario: checkout.purchase_quote
    kind: availability
    tiers: {gold: 99.95}
credits:
  - {below_pct: 99.9, credit_pct: 10}
  - {below_pct: 99.0, credit_pct: 25}
maintenance:
  - start: 2026-11-14T02:00:00Z
    end: 2026-11-14T04:00:30Z
    scenarios: "checkout.*"
    partners: "*"
    reason: planned database upgrade
  - start: 2026-11-20T00:00:00Z
    end: 2026-11-21T00:00:00Z
    scenarios: "*"
    partners: contoso
    reason: partner-requested freeze
"""
WINDOWS = [(datetime(2026, 11, 14, 2), datetime(2026, 11, 14, 4, 0, 30), "checkout.*", "*"),
           (datetime(2026, 11, 20), datetime(2026, 11, 21), "*", "contoso")]
COMMITMENTS = {("checkout.purchase_quote", "gold"): 99.95, "checkout.purchase_quote": 99.9,
               "search.query": 99.5}
# The day of the planted failures, run again after a late landing file.
DAY = datetime(2026, 11, 14, tzinfo=UTC)
# The day the pipeline never processed (its run failed, say): its minutes are expected and
# not received, which the completeness states.
MISSING_DAY = datetime(2026, 11, 28, tzinfo=UTC)


def quote_event(event_id: str, moment: datetime, partner: str = "contoso",
                status: int = 7) -> dict:
    # Spelled as a client might: the statement matches them to the reference.
    return wire_event(event_id, time=f"{moment:%Y-%m-%dT%H:%M:%S}.000Z", status=status,
                      cc=f"ms.b.tel.scenario=Checkout.Purchase_Quote;ms.b.tel.partner={partner}")


def land_known_events(landing: Path) -> None:
    """A 10-minute outage of contoso's quotes, fabrikam failures in and just out of the
    maintenance window, and an unknown partner."""
    noon = DAY.replace(hour=12)
    write_landing(landing, noon, "outage", [
        quote_event(f"outage-{minute}-{n}", noon + timedelta(minutes=minute, seconds=n), "CONTOSO")
        for minute in range(10) for n in range(6)])
    two = DAY.replace(hour=2)
    write_landing(landing, two, "in-window", [
        quote_event(f"window-{n}", two + timedelta(minutes=30, seconds=n), "fabrikam")
        for n in range(40)])
    four = DAY.replace(hour=4)
    write_landing(landing, four, "window-edge", [
        *(quote_event(f"edge-in-{n}", four + timedelta(seconds=10 + n), "fabrikam")
          for n in range(5)),
        *(quote_event(f"edge-out-{n}", four + timedelta(minutes=1, seconds=n), "fabrikam")
          for n in range(5))])
    write_landing(landing, DAY.replace(hour=9), "initech", [
        quote_event(f"initech-{n}", DAY.replace(hour=9, minute=n), " Initech ", status=0)
        for n in range(4)])


def hand_computation(lake_root: Path, reference: Path) -> dict[str, dict[str, dict]]:
    """Every statement figure, recomputed in plain Python from the minute aggregate files and
    the reference CSVs, applying the rules of docs/statements.md minute by minute."""
    with (reference / "scenarios.csv").open(newline="") as file:
        scenarios = {row["scenario_id"].strip().lower(): row for row in csv.DictReader(file)}
    with (reference / "customers.csv").open(newline="") as file:
        customers = {row["partner_id"].strip().lower(): row for row in csv.DictReader(file)}
    table_dir = lake_root / "aggregate" / "minute_aggregate"
    processed = {datetime.strptime(path.parent.name, "%Y-%m-%dT%H")
                 for path in table_dir.glob("*/data.parquet")}

    def covering(scenario_id: str, partner_id: str) -> list[tuple[datetime, datetime]]:
        return [(start, end) for start, end, s, p in WINDOWS
                if fnmatch.fnmatchcase(scenario_id, s) and fnmatch.fnmatchcase(partner_id, p)]

    sums: dict[tuple[str, str], list[int]] = {}
    for path in table_dir.glob("*/data.parquet"):
        for row in pq.read_table(path).to_pylist():
            scenario = scenarios.get(row["scenario_id"].strip().lower())
            minute = row["minute"]
            if scenario is None or not NOVEMBER[0] <= minute < NOVEMBER[1]:
                continue
            partner_key = row["partner_id"].strip().lower()
            partner = customers[partner_key]["partner_id"] if partner_key in customers \
                else partner_key
            key = (scenario["scenario_id"], partner)
            excluded = any(start <= minute < end for start, end in covering(*key))
            totals = sums.setdefault(key, [0, 0, 0])
            if excluded:
                totals[2] += row["total_requests"]
            else:
                totals[0] += row["total_requests"]
                totals[1] += row["successful_requests"]

    result: dict[str, dict[str, dict]] = {}
    for (scenario_id, partner), (total, successful, excluded_requests) in sums.items():
        tier = customers[partner]["tier"] if partner in customers else None
        commitment = COMMITMENTS.get((scenario_id, tier), COMMITMENTS[scenario_id])
        attainment = 100 * successful / total if total else None
        credit = (0.0 if attainment is None or attainment >= commitment
                  else 25.0 if attainment < 99.0 else 10.0 if attainment < 99.9 else 0.0)
        excluded = expected = received = 0
        minute = NOVEMBER[0]
        windows = covering(scenario_id, partner)
        while minute < NOVEMBER[1]:
            if any(start <= minute < end for start, end in windows):
                excluded += 1
            else:
                expected += 1
                received += minute.replace(minute=0) in processed
            minute += timedelta(minutes=1)
        result.setdefault(partner, {})[scenario_id] = {
            "commitment_pct": commitment, "total_requests": total,
            "successful_requests": successful, "attainment_pct": attainment,
            "excluded_minutes": excluded, "excluded_requests": excluded_requests,
            "expected_minutes": expected, "received_minutes": received,
            "completeness_pct": 100 * received / expected, "credit_pct": credit,
        }
    return result


def issued_figures(root: Path) -> dict[str, dict[str, dict]]:
    """The latest version of each partner's November statement, as the hand computation keys
    it."""
    found = {}
    for directory in (root / "month=2026-11").iterdir():
        latest = max(versions(directory))
        document = json.loads((directory / f"v{latest}" / "statement.json").read_text())
        found[document["partner_id"]] = {
            line["scenario_id"]: {name: line[name] for name in (
                "commitment_pct", "total_requests", "successful_requests", "attainment_pct",
                "excluded_minutes", "excluded_requests", "expected_minutes", "received_minutes",
                "completeness_pct", "credit_pct")}
            for line in document["figures"]["scenarios"]}
    return found


def png_pixels(data: bytes) -> tuple[int, int, list[list[int]]]:
    """Width, height and rows of grey levels (the mean of the channels) of an 8-bit grey or
    RGB PNG, as pdftoppm writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, compressed, width, height, channels = 8, b"", 0, 0, 1
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (0, 2)
            channels = 1 if colour == 0 else 3
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    stride = width * channels
    raw, rows, previous = zlib.decompress(compressed), [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], (previous[x - channels] if x >= channels else 0)
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                nearest = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
                line[x] = (line[x] + nearest) & 255
        rows.append([sum(line[x:x + channels]) // channels for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def statement_cli(*args: str):
    result = CliRunner().invoke(main, ["statement", *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_a_generated_month_is_issued_reissued_after_late_data_printed_and_served(platform):
    if find_chromium() is None or shutil.which("pdftoppm") is None:
        pytest.fail("Debian's chromium and poppler-utils are not installed: `make test` "
                    "installs them")
    settings = platform.settings
    reference = settings.reference_dir
    (reference / "scenarios.csv").write_text(SCENARIOS_CSV)
    (reference / "customers.csv").write_text(CUSTOMERS_CSV)
    (reference / "operation_scenarios.csv").write_text(OPERATIONS_CSV)
    (reference / "slos.yaml").write_text(SLOS_YAML)
    month_start, month_end = (moment.replace(tzinfo=UTC) for moment in NOVEMBER)
    generate_landing(settings.landing_dir, reference, month_start, month_end,
                     events_per_hour=20, seed=11, files_per_hour=1)
    land_known_events(settings.landing_dir)
    # As `telemetry backfill --start 2026-11-01 --end 2026-11-28` and from 2026-11-29 to
    # 2026-12-01: the month but its 28th.
    for start, end in ((month_start, MISSING_DAY), (MISSING_DAY + timedelta(days=1), month_end)):
        backfill(plan_backfill(start, end), platform.instance)

    first = statement_cli("--month", "2026-11")
    assert first.exit_code == 0, first.output
    lake_root = Path(settings.lake_dir).absolute()
    # The windows are on the charts too, scoped to what they name.
    windows = [a for a in AnnotationStore(lake_root).between(*NOVEMBER) if a.kind == "maintenance"]
    assert sorted((a.scope, a.scope_value or "", a.starts_at, a.ends_at) for a in windows) == [
        ("all", "", datetime(2026, 11, 14, 2), datetime(2026, 11, 14, 4, 0, 30)),
        ("partner", "contoso", datetime(2026, 11, 20), datetime(2026, 11, 21))]
    assert "planned database upgrade" in min(windows, key=lambda a: a.starts_at).text
    root = lake_root / "statements"
    expected = hand_computation(lake_root, reference)
    assert {"contoso", "fabrikam", "initech"} <= set(expected)
    _assert_same(issued_figures(root), expected)
    for partner in expected:
        assert f"{partner}: v1 issued" in first.output
    assert "0 unchanged" in first.output and "v1 unchanged" not in first.output

    contoso = expected["contoso"]["checkout.purchase_quote"]
    fabrikam = expected["fabrikam"]["checkout.purchase_quote"]
    # The planted failures: contoso's outage breaks its gold commitment, and fabrikam's in
    # the window (02:30 and 04:00) are excluded, those at 04:01 not.
    assert contoso["total_requests"] - contoso["successful_requests"] >= 60
    assert contoso["credit_pct"] == 25.0 and contoso["commitment_pct"] == 99.95
    assert fabrikam["excluded_requests"] >= 45 and fabrikam["commitment_pct"] == 99.9
    assert fabrikam["excluded_minutes"] == 121  # 02:00 to 04:00
    assert fabrikam["expected_minutes"] == NOVEMBER_MINUTES - 121
    assert fabrikam["received_minutes"] == NOVEMBER_MINUTES - 121 - 1440
    assert fabrikam["completeness_pct"] == pytest.approx(
        100 * (NOVEMBER_MINUTES - 121 - 1440) / (NOVEMBER_MINUTES - 121))
    assert contoso["excluded_minutes"] == 121 + 1440
    assert contoso["received_minutes"] == NOVEMBER_MINUTES - 121 - 1440 - 1440
    assert expected["contoso"]["search.query"]["excluded_minutes"] == 1440
    initech_v1 = json.loads((root / "month=2026-11" / "partner=initech" / "v1" /
                             "statement.json").read_text())
    assert initech_v1["figures"]["flags"] == ["unknown partner"]
    assert initech_v1["figures"]["tier"] is None and initech_v1["status"] == "final"

    contoso_v1 = root / "month=2026-11" / "partner=contoso" / "v1"
    document = json.loads((contoso_v1 / "statement.json").read_text())
    assert document["catalog"]["source"] == str((reference / "slos.yaml").absolute())
    assert document["catalog"]["sha256"] == hashlib.sha256(
        (reference / "slos.yaml").read_bytes()).hexdigest()
    assert document["inputs"]["minute_aggregate_hours"] == 720 - 24
    assert document["pdf"] == {"rendered": True, "reason": None}
    assert document["run_id"] in first.output
    pdf = (contoso_v1 / "statement.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1",
                    str(contoso_v1 / "statement.pdf"), str(platform.settings.data_dir / "page")],
                   check=True, timeout=60)
    (page,) = platform.settings.data_dir.glob("page*.png")
    width, height, rows = png_pixels(page.read_bytes())
    assert height > width > 250  # portrait A4 at 40 dpi: 331 x 468
    dark = sum(value < 128 for row in rows for value in row)
    assert dark > 0.005 * width * height

    before = {path: path.read_bytes() for path in root.rglob("v1/*")}
    unchanged = statement_cli("--month", "2026-11")
    assert unchanged.exit_code == 0 and "0 issued" in unchanged.output

    # Late failures of contoso's quotes; the day is run again.
    late_hour = DAY.replace(hour=18)
    write_landing(settings.landing_dir, late_hour, "late", [
        quote_event(f"late-{n}", late_hour + timedelta(minutes=n)) for n in range(30)])
    backfill(plan_backfill(DAY, DAY + timedelta(days=1)), platform.instance)
    second = statement_cli("--month", "2026-11")
    assert second.exit_code == 0, second.output
    assert "contoso: v2 issued" in second.output
    assert second.output.count("v1 unchanged") == len(expected) - 1
    after = hand_computation(lake_root, reference)
    _assert_same(issued_figures(root), after)
    assert after["contoso"]["checkout.purchase_quote"]["total_requests"] == (
        contoso["total_requests"] + 30)
    assert {path: path.read_bytes() for path in root.rglob("v1/*")} == before
    assert [sorted(versions(d)) for d in sorted((root / "month=2026-11").iterdir())] == [
        [1, 2] if d.name == "partner=contoso" else [1]
        for d in sorted((root / "month=2026-11").iterdir())]

    contoso_v2 = contoso_v1.parent / "v2"
    revision = json.loads((contoso_v2 / "statement.json").read_text())["revision"]
    assert revision["previous_version"] == 1
    (change,) = revision["scenarios"]
    new = after["contoso"]["checkout.purchase_quote"]
    assert change["scenario_id"] == "checkout.purchase_quote"
    assert change["total_requests"] == [contoso["total_requests"], new["total_requests"]]
    assert change["attainment_pct"] == pytest.approx([contoso["attainment_pct"],
                                                      new["attainment_pct"]])
    assert change["credit_pct"] == [25.0, 25.0]
    html = (contoso_v2 / "statement.html").read_text()
    assert "Revision of v1" in html
    assert f"{contoso['total_requests']:,} → {new['total_requests']:,}" in html

    listed = statement_cli("--list", "--partner", "CONTOSO")
    assert listed.exit_code == 0 and listed.output.count("2026-11") >= 2
    assert "v2" in listed.output and "v1" in listed.output
    nothing = statement_cli("--month", "2026-10")
    assert nothing.exit_code == 1 and "nothing to issue for 2026-10" in nothing.output
    stranger = statement_cli("--month", "2026-11", "--partner", "nobody")
    assert stranger.exit_code == 1 and "unknown partner 'nobody'" in stranger.output

    with serve_asgi(create_app()) as url:
        with urllib.request.urlopen(f"{url}/", timeout=30) as answer:
            assert 'href="/statements"' in answer.read().decode()
        with urllib.request.urlopen(f"{url}/statements", timeout=30) as answer:
            listing = answer.read().decode()
        assert 'data-partner="contoso" data-version="2"' in listing
        assert 'data-partner="contoso" data-version="1"' in listing
        assert 'href="/statements/2026-11/contoso/v1/statement.pdf"' in listing
        with urllib.request.urlopen(f"{url}/statements/2026-11/contoso/v1/statement.pdf",
                                    timeout=30) as answer:
            assert answer.headers["content-type"] == "application/pdf"
            assert answer.read() == pdf
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/statements/2026-11/contoso/v3/statement.pdf",
                                   timeout=30)
        assert missing.value.code == 404


def _assert_same(issued: dict, expected: dict) -> None:
    assert issued.keys() == expected.keys()
    for partner, lines in expected.items():
        assert issued[partner].keys() == lines.keys(), partner
        for scenario, figures in lines.items():
            assert issued[partner][scenario] == pytest.approx(figures), (partner, scenario)
