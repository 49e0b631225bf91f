"""Events per second from landing files to published tables, against a one-query floor.

One hour of ~1M generated events. The pipeline figure is the hourly run (raw → filtered →
minute aggregates) plus the daily run (daily aggregates → published) for that day, with the
day's other hours already materialized empty so that only this hour's work is timed. The floor is
a single hand-written DuckDB query over the same files doing what the pipeline must at least do:
read and filter, derive scenario and partner, dedupe by id, and the minute aggregate at the
pipeline's grain with an exact p95 per group.
"""

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
DAY = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = DAY + timedelta(hours=9)
EVENTS_PER_HOUR = int(os.environ.get("BENCH_EVENTS_PER_HOUR", "1000000"))

FLOOR_SQL = """
with events as (
    select
        trim(id) as event_id,
        cast(timezone('UTC', try_cast("time" as timestamptz)) as timestamp) as event_time,
        lower(trim(data.baseType)) as base_type,
        lower(trim(coalesce(ext.cloud.environment, ''))) as environment,
        data.cC as context,
        data.scScenario as sc_scenario,
        data.scPartner as sc_partner,
        data.baseData.operationName as operation_name,
        data.baseData.callerName as caller_name,
        data.baseData.requestType as request_type,
        try_cast(data.baseData.latencyMs as double) as latency_ms,
        try_cast(data.baseData.requestStatus as integer) as request_status,
        coalesce(data.testHeader, '') as test_header,
        lower(coalesce(data.quoteIsTest, '')) as quote_is_test,
        lower(coalesce(data.isTest, '')) as is_test
    from read_json($files, format = 'newline_delimited', ignore_errors = true,
        columns = {id: 'VARCHAR', "time": 'VARCHAR', data: 'STRUCT(baseType VARCHAR, cC VARCHAR,
            scScenario VARCHAR, scPartner VARCHAR, testHeader VARCHAR, quoteIsTest VARCHAR,
            isTest VARCHAR, baseData STRUCT(operationName VARCHAR, callerName VARCHAR,
            requestType VARCHAR, latencyMs JSON, requestStatus JSON))',
            ext: 'STRUCT(cloud STRUCT(environment VARCHAR))'})
),

kept as (
    select * from events
    where base_type in ('ms.qos.incomingservicerequest', 'incomingservicerequest')
        and (environment = '' or environment like '%prod%')
        and test_header = '' and quote_is_test <> 'true' and is_test <> 'true'
    -- The same id seen twice is one event: the copy with the earliest time.
    qualify row_number() over (partition by event_id order by event_time) = 1
)

select
    coalesce(nullif(regexp_extract(context, '(?i)ms[.]b[.]tel[.]scenario[ ]*=([^;,]*)', 1), ''),
             sc_scenario, operation_name) as scenario_id,
    coalesce(nullif(regexp_extract(context, '(?i)ms[.]b[.]tel[.]partner[ ]*=([^;,]*)', 1), ''),
             nullif(sc_partner, ''), nullif(caller_name, ''), 'unknown') as partner_id,
    date_trunc('minute', event_time) as minute,
    request_type,
    environment,
    count(*) as total_requests,
    count_if(request_status < 5) as successful_requests,
    avg(latency_ms) as avg_latency_ms,
    -- Exact nearest-rank p95 of the group.
    quantile_disc(latency_ms, 0.95) as p95_latency_ms
from kept
group by all
"""


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path) -> None:
    os.environ["TELEMETRY_DATA_DIR"] = str(workdir / "data")
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    (workdir / "dagster_home").mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")
    shutil.copytree(REPO / "data" / "reference", workdir / "data" / "reference")

    from dagster import DagsterInstance

    from telemetry_cli.launcher import run_job_range, run_reference
    from telemetry_core.landing import landing_files
    from telemetry_core.settings import Settings
    from telemetry_synth import generate_landing

    settings = Settings.from_env()
    started = time.perf_counter()
    # The generator's diurnal curve is 1.0 on average; scale so this hour gets the target.
    summary = generate_landing(settings.landing_dir, settings.reference_dir, HOUR,
                               HOUR + timedelta(hours=1), events_per_hour=EVENTS_PER_HOUR,
                               seed=11)
    events = summary.events_written
    print(f"generated {events:,} events in {summary.files_written} files "
          f"({time.perf_counter() - started:.1f}s)")

    hour_keys = [f"2026-11-20-{hour:02d}:00" for hour in range(24)]
    this_hour = f"2026-11-20-{HOUR:%H}:00"
    with DagsterInstance.get() as instance:
        run_reference(instance)
        run_job_range(instance, "hourly_pipeline", [k for k in hour_keys if k < this_hour])
        run_job_range(instance, "hourly_pipeline", [k for k in hour_keys if k > this_hour])
        started = time.perf_counter()
        run_job_range(instance, "hourly_pipeline", [this_hour])
        hourly_seconds = time.perf_counter() - started
        started = time.perf_counter()
        run_job_range(instance, "daily_pipeline", ["2026-11-20"])
        daily_seconds = time.perf_counter() - started
    pipeline_seconds = hourly_seconds + daily_seconds

    files = [str(path) for path in landing_files(settings.landing_dir, HOUR)]
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    groups = len(con.execute(FLOOR_SQL, {"files": files}).fetchall())
    floor_seconds = time.perf_counter() - started

    print(f"pipeline raw → published: {pipeline_seconds:.2f}s "
          f"(hourly run {hourly_seconds:.2f}s, daily run {daily_seconds:.2f}s), "
          f"{events / pipeline_seconds:,.0f} events/s")
    print(f"floor (one DuckDB query: filter, dedupe, minute aggregate with p95, "
          f"{groups:,} groups): "
          f"{floor_seconds:.2f}s, {events / floor_seconds:,.0f} events/s")
    print(f"ratio pipeline / floor: {pipeline_seconds / floor_seconds:.1f}x (goal: at most 2.0)")


if __name__ == "__main__":
    main()
