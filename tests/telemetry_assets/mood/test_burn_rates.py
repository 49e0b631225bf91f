"""Burn rates, error budgets and states against figures worked out by hand.

The synthetic history: `checkout.quote` (SLO 99.9 %) takes 100 requests a minute from
2026-11-17 00:00 to 2026-11-20 12:00, split over two partners, and fails 2 % of them (2 a
minute) for the 70 minutes 10:00-11:10 on 2026-11-20. `search.query` (SLO 99 %) takes one
request a minute over the same span and fails every one of them in 10:40-11:10: far above
its budget, but on too little traffic to page anyone under the default minimum of 100.
"""

from contextlib import closing
from datetime import datetime

import duckdb
import pytest

from telemetry_assets.mood.burn_rates import (
    BurnRule,
    MoodPolicy,
    current_mood,
    describe,
    episodes,
    format_duration,
    latest_data_time,
    parse_duration,
)

OUTAGE_END = datetime(2026, 11, 20, 11, 10)


@pytest.fixture
def con():
    with closing(duckdb.connect(":memory:")) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema reference")
        con.execute("create schema aggregate")
        con.execute("""
            create table reference.scenarios as
            select * from (values
                ('checkout.quote', 'Purchase quote', 'checkout', 99.9, 'ST-1'),
                ('search.query', 'Search', 'search', 99.0, 'ST-2'),
                ('idle.scenario', 'Idle', 'idle', 99.5, 'ST-3')
            ) as t(scenario_id, scenario_name, service, slo_target_pct, stid)
        """)
        # Scenario ids arrive in any case in events; the reference match is case-insensitive.
        con.execute("""
            create table aggregate.minute_aggregate as
            with minutes as (
                select unnest(generate_series(timestamp '2026-11-17 00:00',
                    timestamp '2026-11-20 11:59', interval 1 minute)) as minute
            ),
            outage as (
                select minute,
                    minute >= timestamp '2026-11-20 10:00'
                        and minute < timestamp '2026-11-20 11:10' as checkout_down,
                    minute >= timestamp '2026-11-20 10:40'
                        and minute < timestamp '2026-11-20 11:10' as search_down
                from minutes
            )
            select 'checkout.quote' as scenario_id, 'contoso' as partner_id, minute,
                60 as total_requests, 60 - case when checkout_down then 1 else 0 end
                    as successful_requests,
                case when checkout_down then 1 else 0 end as failed_requests
            from outage
            union all
            select 'Checkout.Quote', 'fabrikam', minute, 40,
                40 - case when checkout_down then 1 else 0 end,
                case when checkout_down then 1 else 0 end
            from outage
            union all
            select 'search.query', 'contoso', minute, 1,
                case when search_down then 0 else 1 end,
                case when search_down then 1 else 0 end
            from outage
        """)
        yield con


def by_id(report):
    return {mood.scenario_id: mood for mood in report.scenarios}


def test_burn_rates_and_budget_at_the_end_of_the_outage(con):
    report = current_mood(con, MoodPolicy(), OUTAGE_END)
    checkout = by_id(report)["checkout.quote"]
    figures = {name: (w.requests, w.failed) for name, w in checkout.windows.items()}
    assert figures == {
        "5m": (500, 10), "30m": (3_000, 60), "1h": (6_000, 120), "6h": (36_000, 140),
        "3d": (432_000, 140),
        # 2026-11-17 00:00 to 2026-11-20 11:10 is 4,990 minutes of history, all in the 28 days.
        "28d": (499_000, 140),
    }
    burn = {name: w.burn_rate for name, w in checkout.windows.items()}
    # Error rate / (1 - 0.999): 2 % errors burn 20x; 140 failures in 6 h of 100 a minute is
    # 0.3889 %, 3.889x; in 3 days 0.0324 %, 0.324x.
    assert burn["5m"] == pytest.approx(20.0)
    assert burn["30m"] == pytest.approx(20.0)
    assert burn["1h"] == pytest.approx(20.0)
    assert burn["6h"] == pytest.approx(140 / 36_000 / 0.001)
    assert burn["6h"] == pytest.approx(3.8889, abs=1e-4)
    assert burn["3d"] == pytest.approx(0.32407, abs=1e-5)
    # 499 failures allowed in the 28-day window, 140 spent: 71.94 % left.
    assert checkout.allowed_failures == pytest.approx(499.0)
    assert checkout.budget_remaining_pct == pytest.approx(100 * (1 - 140 / 499))
    assert checkout.budget_remaining_pct == pytest.approx(71.944, abs=1e-3)
    assert checkout.state == "breaching"
    assert checkout.firing == ("page 14.4x over 1h and 5m",)
    assert checkout.windows["1h"].availability_pct == pytest.approx(98.0)


def test_the_page_fires_when_the_hour_burns_14_4x_and_clears_when_the_5m_window_recovers(con):
    policy = MoodPolicy()
    # 1 h burn after t outage minutes: 2t / 6000 / 0.001 = t/3, at least 14.4 from t = 44.
    assert by_id(current_mood(con, policy, datetime(2026, 11, 20, 10, 43)))[
        "checkout.quote"].state == "healthy"
    assert by_id(current_mood(con, policy, datetime(2026, 11, 20, 10, 44)))[
        "checkout.quote"].state == "breaching"
    # k minutes after the outage, the 5 m window holds 5 - k outage minutes: burn 4(5 - k),
    # 16x at k = 1 (still breaching), 12x at k = 2 (below 14.4: the page clears).
    assert by_id(current_mood(con, policy, datetime(2026, 11, 20, 11, 11)))[
        "checkout.quote"].state == "breaching"
    after = by_id(current_mood(con, policy, datetime(2026, 11, 20, 11, 12)))["checkout.quote"]
    assert after.state == "healthy"
    assert after.windows["5m"].burn_rate == pytest.approx(12.0)
    # The 6 h / 30 m page never fires: the 6 h window peaks at 3.889x, below 6.
    assert after.windows["30m"].burn_rate == pytest.approx(56 / 3_000 / 0.001)

    found = episodes(con, policy, datetime(2026, 11, 20), datetime(2026, 11, 21))
    assert [(e.scenario_id, e.state, e.start, e.end, e.minutes) for e in found] == [
        ("checkout.quote", "breaching", datetime(2026, 11, 20, 10, 43),
         datetime(2026, 11, 20, 11, 11), 28),
    ]


def test_windows_with_too_few_requests_are_not_judged(con):
    search = by_id(current_mood(con, MoodPolicy(), OUTAGE_END))["search.query"]
    # 30 failures in a row: 100x the budget over 5 m, 30 m and 1 h (50x), but on 5, 30 and 60
    # requests, all under the minimum of 100, so no page rule can fire.
    assert [(w.requests, w.failed, w.judged) for w in search.windows.values()] == [
        (5, 5, False), (30, 30, False), (60, 30, False), (360, 30, True), (4_320, 30, True),
        (4_990, 30, True),
    ]
    assert search.windows["5m"].burn_rate == pytest.approx(100.0)
    assert search.windows["1h"].burn_rate == pytest.approx(50.0)
    assert search.windows["6h"].burn_rate == pytest.approx(30 / 360 / 0.01)
    assert search.windows["3d"].burn_rate == pytest.approx(30 / 4_320 / 0.01)  # 0.694x
    assert search.budget_remaining_pct == pytest.approx(100 * (1 - 30 / 49.9))
    assert search.state == "healthy" and search.firing == ()

    # With a minimum of 20 the 30 m window (30 requests, 100x) is judged and, with the 6 h
    # window at 8.33x, the 6x rule pages; the 5 m window (5 requests) still is not judged.
    lenient = by_id(current_mood(con, MoodPolicy(min_requests=20), OUTAGE_END))["search.query"]
    assert lenient.state == "breaching"
    assert lenient.firing == ("page 6x over 6h and 30m",)


def test_overall_state_is_the_worst_and_burns_against_the_summed_budgets(con):
    report = current_mood(con, MoodPolicy(), OUTAGE_END)
    assert report.overall == "breaching"
    assert report.counts() == {"healthy": 2, "degraded": 0, "breaching": 1}
    # 1 h: 120 + 30 failures against 6000 x 0.1 % + 60 x 1 % = 6.6 allowed.
    assert report.overall_burn_rates()["1h"] == pytest.approx(150 / 6.6)
    idle = by_id(report)["idle.scenario"]
    assert idle.state == "healthy" and idle.budget_remaining_pct is None
    assert report.worst_first()[0].scenario_id == "checkout.quote"


def test_ticket_and_spent_budget_make_a_scenario_degraded(con):
    # A 1x ticket over 6 h and 30 m: checkout burns 3.889x over 6 h and 20x over 30 m.
    ticket_only = MoodPolicy(rules=(BurnRule("ticket", 1.0, 360, 30),))
    checkout = by_id(current_mood(con, ticket_only, OUTAGE_END))["checkout.quote"]
    assert (checkout.state, checkout.firing) == ("degraded", ("ticket 1x over 6h and 30m",))
    # A 1-hour budget window: 120 failures against 6 allowed is spent (-1900 % left).
    spent = MoodPolicy(rules=(), budget_minutes=60)
    checkout = by_id(current_mood(con, spent, OUTAGE_END))["checkout.quote"]
    assert checkout.state == "degraded" and checkout.firing == ()
    assert checkout.budget_remaining_pct == pytest.approx(-1900.0)


def test_latest_data_time_is_the_end_of_the_last_hour_with_data(con):
    assert latest_data_time(con) == datetime(2026, 11, 20, 12, 0)
    assert current_mood(con, MoodPolicy()).as_of == datetime(2026, 11, 20, 12, 0)


def test_describe_states_the_figures_a_person_needs(con):
    policy = MoodPolicy()
    checkout = by_id(current_mood(con, policy, OUTAGE_END))["checkout.quote"]
    text = describe(checkout, policy.rules)
    assert text == (
        "checkout.quote (Purchase quote) is breaching: burning 20.0x over 1h and 20.0x over 5m "
        "(page at 14.4x); 71.9% of its 28d error budget left, as of 2026-11-20 11:10 UTC."
    )


def test_policy_from_environment():
    policy = MoodPolicy.from_env({
        "TELEMETRY_MOOD_RULES": "page:10:2h:10m, ticket:2:1d:2h",
        "TELEMETRY_MOOD_MIN_REQUESTS": "25",
        "TELEMETRY_MOOD_BUDGET_WINDOW": "30d",
    })
    assert policy.rules == (BurnRule("page", 10.0, 120, 10), BurnRule("ticket", 2.0, 1440, 120))
    assert (policy.min_requests, policy.budget_minutes) == (25, 43_200)
    assert policy.window_minutes == [10, 120, 1440, 43_200]
    assert MoodPolicy.from_env({}) == MoodPolicy()
    with pytest.raises(ValueError, match=r"page:14\.4:1h:5m"):
        MoodPolicy.from_env({"TELEMETRY_MOOD_RULES": "alert:14.4:1h:5m"})
    with pytest.raises(ValueError, match="duration"):
        parse_duration("5 minutes")
    assert [format_duration(m) for m in (5, 60, 90, 4320)] == ["5m", "1h", "90m", "3d"]
