"""The pulse (service level over the last 10 minutes, overall level against the SLO) on literal
minute aggregates, both window edges included."""

from contextlib import closing
from datetime import datetime

import duckdb
import pytest

from telemetry_assets.mood.burn_rates import MoodPolicy
from telemetry_assets.mood.pulse import current_pulse

AS_OF = datetime(2026, 11, 20, 10, 0)


@pytest.fixture
def con():
    with closing(duckdb.connect(":memory:")) as con:
        con.execute("create schema reference")
        con.execute("create schema aggregate")
        con.execute("""
            create table reference.scenarios as select * from (values
                ('quote', 'Purchase quote', 'checkout', 99.9, 'ST-1'),
                ('search', 'Search', 'search', 99.99, 'ST-2'),
                ('idle', 'Idle', 'idle', 99.0, 'ST-3')
            ) as t(scenario_id, scenario_name, service, slo_target_pct, stid)
        """)
        # quote: 500 a minute 09:00-10:09, failing 2 at 09:49 (just outside the pulse), 5 at
        # 09:50 (its first minute) and 100 at 10:00 (after as_of). search: 100 a minute, one
        # failure at 09:10 (outside the pulse, inside the overall window).
        con.execute("""
            create table aggregate.minute_aggregate as
            select scenario_id, 'contoso' as partner_id, minute, total_requests,
                total_requests - failed_requests as successful_requests, failed_requests
            from (
                select 'Quote' as scenario_id, minute, 500 as total_requests,
                    case minute when timestamp '2026-11-20 09:49' then 2
                        when timestamp '2026-11-20 09:50' then 5
                        when timestamp '2026-11-20 10:00' then 100 else 0 end as failed_requests
                from (select unnest(generate_series(timestamp '2026-11-20 09:00',
                    timestamp '2026-11-20 10:09', interval 1 minute)) as minute)
                union all
                select 'search', minute, 100,
                    case when minute = timestamp '2026-11-20 09:10' then 1 else 0 end
                from (select unnest(generate_series(timestamp '2026-11-20 09:00',
                    timestamp '2026-11-20 09:59', interval 1 minute)) as minute)
            )
        """)
        yield con


def test_the_last_ten_minutes_and_the_overall_level(con):
    pulse = current_pulse(con, MoodPolicy(), AS_OF)
    by_id = {s.scenario_id: s for s in pulse.scenarios}
    quote, search, idle = by_id["quote"], by_id["search"], by_id["idle"]
    # 09:50 up to 10:00, not 10:00 itself; the reference id matches in any case.
    assert (quote.requests, quote.failed) == (5_000, 5)
    assert (quote.overall_requests, quote.overall_failed) == (60 * 500, 7)
    assert quote.level_pct == pytest.approx(99.9)
    assert quote.within_sla is True
    assert (search.requests, search.failed, search.overall_failed) == (1_000, 0, 1)
    # 1 failure in 6,000 is 99.983 %, under its 99.99 % objective.
    assert search.within_sla is False
    assert (idle.requests, idle.overall_requests, idle.within_sla) == (0, 0, None)
    assert pulse.overall.within_sla is False
    assert (pulse.overall.requests, pulse.overall.failed) == (6_000, 5)

    assert pulse.lines() == [
        "Purchase quote: 99.9 % (5 failed of 5,000 in the last 10 min) · overall 99.97 % over "
        "28d, within SLA",
        "Search: 100 % (no failed request in the last 10 min) · overall 99.98 % over 28d, "
        "outside SLA",
        "Idle: no traffic (no request in the last 10 min) · overall no traffic over 28d, "
        "no traffic to judge",
        "Overall: 99.91 % (5 failed of 6,000 in the last 10 min) · overall 99.97 % over 28d, "
        "outside SLA",
    ]
    figures = pulse.as_json()
    assert figures["as_of"] == "2026-11-20T10:00:00+00:00"
    assert figures["provisional"] is False
    assert [s["scenario_id"] for s in figures["scenarios"]] == ["quote", "search", "idle"]
    assert figures["scenarios"][0]["failed"] == 5
    assert figures["overall"]["within_sla"] is False


def test_by_default_the_pulse_ends_with_the_latest_data(con):
    pulse = current_pulse(con, MoodPolicy())
    # The latest hour with data ends at 11:00: quote's 10:00-10:09 minutes are 10 min before.
    assert pulse.as_of == datetime(2026, 11, 20, 11, 0)
    quote = next(s for s in pulse.scenarios if s.scenario_id == "quote")
    assert (quote.requests, quote.failed) == (0, 0)
