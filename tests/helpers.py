"""Literal events and small runners shared by the tests."""

import csv
import gzip
import io
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import uvicorn
from dagster import TimeWindow

from telemetry_assets.stage import stage_params
from telemetry_core.landing import LINE_SCHEMA, hour_folder, register_landing
from telemetry_core.sql import compute_connection, load_sql
from tests.events import as_lines, ndjson, wire_event

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice, so parallel workers differ)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

DAY = datetime(2026, 11, 20, tzinfo=UTC)
HOUR_10 = TimeWindow(DAY + timedelta(hours=10), DAY + timedelta(hours=11))

SCENARIOS_CSV = """scenario_id,scenario_name,service,slo_target_pct,stid
checkout.quote,Purchase quote,checkout,99.5,ST-100
search.query,Search,search,99.0,ST-200
legacy.order,Legacy order,orders,99.9,ST-300
"""
CUSTOMERS_CSV = """partner_id,partner_name,tier
contoso,Contoso,gold
fabrikam,Fabrikam,silver
"""
OPERATION_SCENARIOS_CSV = """operation_name,scenario_id
GetQuote,checkout.quote
RunSearch,search.query
"""


@contextmanager
def serve_asgi(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An ASGI app served by uvicorn on a loopback port, in a thread; yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


# Reference names are user data. Printed as they are, these would be rich markup in the CLI, HTML
# on the dashboard and in its Plotly charts, and mentions or links in Slack.
RICH_ID, RICH_NAME = "[/oops]", "[bold red]x"
HTML_ID, HTML_NAME = '<a href="https://evil.example">x</a>', "<b>bold</b> & <br>co"
SLACK_ID, SLACK_NAME = "<!channel>", "<@U123> <https://x|y>"
HOSTILE = {RICH_ID: RICH_NAME, HTML_ID: HTML_NAME, SLACK_ID: SLACK_NAME}


def lines_table(lines: list[bytes], file: str = "landing.jsonl") -> pa.Table:
    return pa.table(
        {"file": [file] * len(lines), "line_number": list(range(1, len(lines) + 1)),
         "line": lines},
        schema=LINE_SCHEMA,
    )


def run_stage(con: duckdb.DuckDBPyConnection, stage: str, name: str, window: TimeWindow,
              **params) -> None:
    """Run dbt_like_sql/<stage>/<name>.sql for the window into a temp table named after it."""
    sql = load_sql(stage, name)
    con.execute(f"create or replace temp table {name} as {sql}",
                stage_params(sql, window, **params))


def rewrite_partition(lake, table, start: datetime, select: str) -> None:
    """Replace one partition with `select` over its current rows (the view is named `t`)."""
    path = lake.partition_path(table, start)
    with closing(compute_connection()) as con:
        con.execute(f"create temp table t as select * from read_parquet('{path}', "
                    "hive_partitioning = false)")
        lake.write(table, start, con.sql(select))


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict]:
    relation = con.sql(query)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def classify(events: list[dict | str], window: TimeWindow = HOUR_10,
             allow_list: str = OPERATION_SCENARIOS_CSV, earlier: list[dict] = (),
             horizon_hours: int = 24) -> list[dict]:
    """raw_events then filtered_events on literal events, `earlier` being the raw events of the
    hours before the window; one dict per event, by event id."""
    with closing(compute_connection()) as con:
        register_landing(con, lines_table(as_lines(*events)))
        run_stage(con, "raw", "raw_events", window)
        con.execute("delete from raw_events where reject_reason is not null")
        con.register("earlier_raw_events", pd.DataFrame({
            "event_id": pd.Series([event["id"] for event in earlier], dtype="string"),
            "event_time": pd.to_datetime([event["time"] for event in earlier], utc=True,
                                         format="ISO8601")
            .tz_convert(None).astype("datetime64[us]"),
        }))
        con.register("operation_scenarios", csv_frame(allow_list))
        run_stage(con, "staging", "filtered_events", window, dedupe_horizon_hours=horizon_hours)
        return rows(con, "select * from filtered_events order by event_id")


def csv_frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str)


def write_reference(reference_dir: Path) -> None:
    reference_dir.mkdir(parents=True, exist_ok=True)
    (reference_dir / "scenarios.csv").write_text(SCENARIOS_CSV)
    (reference_dir / "customers.csv").write_text(CUSTOMERS_CSV)
    (reference_dir / "operation_scenarios.csv").write_text(OPERATION_SCENARIOS_CSV)


def write_hostile_reference(reference_dir: Path) -> None:
    """The standard reference with the HOSTILE scenarios instead of the usual ones."""
    write_reference(reference_dir)
    with (reference_dir / "scenarios.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["scenario_id", "scenario_name", "service", "slo_target_pct", "stid"])
        for n, (scenario_id, name) in enumerate(HOSTILE.items()):
            writer.writerow([scenario_id, name, "checkout", "99.5", f"ST-{n}"])


def hostile_events(hour: datetime) -> list[dict]:
    """5 requests a minute for each HOSTILE scenario over the hour, one in five failing."""
    return [
        wire_event(
            event_id=f"{scenario_id}-{minute}-{n}",
            time=f"{hour + timedelta(minutes=minute, seconds=n):%Y-%m-%dT%H:%M:%S}.000Z",
            cc=f"ms.b.tel.scenario={scenario_id};ms.b.tel.partner=contoso",
            status=5 if n == 0 else 0,
        )
        for scenario_id in HOSTILE
        for minute in range(60)
        for n in range(5)
    ]


def write_landing(landing_dir: Path, hour_start: datetime, name: str,
                  events: list[dict | str], compress: bool = False) -> Path:
    folder = hour_folder(landing_dir, hour_start)
    folder.mkdir(parents=True, exist_ok=True)
    payload = ndjson(*events)
    path = folder / (name + (".jsonl.gz" if compress else ".jsonl"))
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def same_rows(actual, expected, rel: float = 1e-9) -> bool:
    """Row lists equal but for float rounding: DuckDB sums doubles in parallel, in no fixed
    order, so a recomputed average may differ in its last bits."""

    def same(a, b) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=rel, abs_tol=rel)
        return a == b

    return same(actual, expected)
