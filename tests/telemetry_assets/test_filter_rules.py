"""SPEC §3 keep/derive rules, on literal events run through the raw and filtered SQL."""

import json
from contextlib import closing
from datetime import timedelta

import pytest
from dagster import TimeWindow

from telemetry_core.landing import classify_event_lines
from telemetry_core.sql import compute_connection
from tests.events import MISSING, wire_event
from tests.helpers import (
    CUSTOMERS_CSV,
    DAY,
    SCENARIOS_CSV,
    classify,
    csv_frame,
    rows,
    run_stage,
)


def outcome(**fields) -> dict:
    (row,) = classify([wire_event(**fields)])
    return row


@pytest.mark.parametrize(
    ("environment", "kept"),
    [
        # The spec's own examples, applied literally.
        ("prod-test", True),
        ("nonprod-eu", True),
        ("svc-perf", False),
        ("eu-int", False),
        ("NonProd", False),
        # Empty or missing is production.
        ("", True),
        (MISSING, True),
        ("  ", True),
        # Every listed non-production name, in any case and with padding.
        ("dev", False),
        ("INT", False),
        (" ppe ", False),
        ("non-prod", False),
        ("sandbox", False),
        ("perf", False),
        ("test", False),
        ("eu-dev-2", False),
        ("my-sandbox", False),
        ("west-ppe", False),
        ("prod", True),
        ("Prod-EU", True),
        ("westeurope", True),
        ("prod-int", True),
        # Literal reading: no listed name or suffix, so kept like the spec's nonprod-eu.
        ("eu-non-prod", True),
    ],
)
def test_production_environment_rule(environment, kept):
    row = outcome(environment=environment)
    assert (row["exclusion_reason"] is None) is kept, row["exclusion_reason"]
    if not kept:
        assert row["exclusion_reason"] == "non_prod"


@pytest.mark.parametrize(
    ("fields", "is_test"),
    [
        ({"test_header": "synthetic-probe"}, True),
        ({"test_header": "   "}, False),
        ({"test_header": ""}, False),
        ({"quote_is_test": "true"}, True),
        ({"quote_is_test": " TRUE "}, True),
        ({"quote_is_test": "false"}, False),
        ({"quote_is_test": "yes"}, False),
        ({"is_test": "True"}, True),
        ({"is_test": "false"}, False),
        ({"is_test": ""}, False),
    ],
)
def test_test_traffic_fields(fields, is_test):
    row = outcome(**fields)
    assert row["exclusion_reason"] == ("test_traffic" if is_test else None)


@pytest.mark.parametrize(
    ("base_type", "kept"),
    [
        ("Ms.Qos.IncomingServiceRequest", True),
        ("ms.qos.incomingservicerequest", True),
        ("IncomingServiceRequest", True),
        (" incomingservicerequest ", True),
        ("Ms.Qos.OutgoingServiceRequest", False),
        ("IncomingServiceRequestV2", False),
    ],
)
def test_base_type_is_compared_case_insensitively(base_type, kept):
    row = outcome(base_type=base_type)
    assert row["exclusion_reason"] == (None if kept else "wrong_type")


def test_scenario_priority_correlation_context_first():
    row = outcome(cc="ms.b.tel.scenario=search.query", sc_scenario="legacy.order",
                  operation="GetQuote")
    assert row["scenario_id"] == "search.query"


def test_scenario_priority_legacy_field_before_allow_list():
    row = outcome(cc="", sc_scenario="legacy.order", operation="GetQuote")
    assert row["scenario_id"] == "legacy.order"


def test_scenario_priority_allow_list_last_matched_case_insensitively():
    row = outcome(cc=MISSING, sc_scenario="  ", operation=" getquote ")
    assert row["scenario_id"] == "checkout.quote"
    assert row["exclusion_reason"] is None


def test_event_without_any_scenario_is_unattributed():
    row = outcome(cc="ms.b.tel.partner=contoso", sc_scenario="", operation="NotAllowed")
    assert row["exclusion_reason"] == "unattributed"


def test_correlation_context_keys_case_insensitive_trimmed_values_keep_case():
    row = outcome(cc=" MS.B.Tel.Scenario = Checkout.Quote , Ms.b.tel.PARTNER= Contoso-EU ;x=y")
    assert row["scenario_id"] == "Checkout.Quote"
    assert row["partner_id"] == "Contoso-EU"


def test_correlation_context_ignores_keys_that_only_end_like_ours():
    row = outcome(cc="xms.b.tel.scenario=wrong;ms.b.tel.scenario=search.query")
    assert row["scenario_id"] == "search.query"


def test_empty_context_value_falls_through_to_next_source():
    row = outcome(cc="ms.b.tel.scenario= ;ms.b.tel.partner=", sc_scenario="legacy.order",
                  sc_partner="fabrikam")
    assert (row["scenario_id"], row["partner_id"]) == ("legacy.order", "fabrikam")


@pytest.mark.parametrize(
    ("fields", "partner"),
    [
        ({"cc": "ms.b.tel.scenario=s;ms.b.tel.partner=contoso", "sc_partner": "fabrikam"},
         "contoso"),
        ({"cc": "ms.b.tel.scenario=s", "sc_partner": "fabrikam", "caller": "app"}, "fabrikam"),
        ({"cc": "ms.b.tel.scenario=s", "sc_partner": "", "caller": " app "}, "app"),
        ({"cc": "ms.b.tel.scenario=s", "caller": MISSING}, "unknown"),
        ({"cc": "ms.b.tel.scenario=s", "caller": ""}, "unknown"),
    ],
)
def test_partner_priority(fields, partner):
    assert outcome(**fields)["partner_id"] == partner


@pytest.mark.parametrize(
    ("status", "success"),
    [(0, True), (4, True), (5, False), (6, False), (-1, True), (MISSING, False), (None, False)],
)
def test_success_is_status_below_five(status, success):
    row = outcome(status=status)
    assert row["is_success"] is success


def test_duplicates_count_once_and_first_copy_wins():
    events = [
        wire_event("dup", status=0),
        wire_event("dup", status=7),
        wire_event("dup", status=7),
        wire_event("other"),
    ]
    result = classify(events)
    kept = [row for row in result if row["exclusion_reason"] is None]
    assert [row["event_id"] for row in kept] == ["dup", "other"]
    assert kept[0]["is_success"] is True
    assert sum(row["exclusion_reason"] == "duplicate" for row in result) == 2


def test_duplicate_of_excluded_event_is_counted_as_duplicate_once():
    events = [wire_event("x", environment="dev"), wire_event("x", environment="dev")]
    reasons = sorted(row["exclusion_reason"] for row in classify(events))
    assert reasons == ["duplicate", "non_prod"]


def reasons_by_id(events: list[dict], earlier: list[dict], **options) -> dict:
    return {row["event_id"]: row["exclusion_reason"]
            for row in classify(events, earlier=earlier, **options)}


def test_a_copy_seen_in_an_earlier_hour_within_the_horizon_is_a_duplicate():
    earlier = [
        wire_event("yesterday-within", time="2026-11-19T10:30:00Z"),  # 23h45m before
        wire_event("yesterday-beyond", time="2026-11-19T10:14:59Z"),  # 24h00m01s before
        wire_event("an-hour-ago", time="2026-11-20T09:59:59.999Z"),
    ]
    events = [wire_event(event_id, time="2026-11-20T10:15:00Z")
              for event_id in ("yesterday-within", "yesterday-beyond", "an-hour-ago", "new")]
    assert reasons_by_id(events, earlier) == {
        "yesterday-within": "duplicate", "yesterday-beyond": None, "an-hour-ago": "duplicate",
        "new": None,
    }


def test_the_dedupe_horizon_is_configurable():
    earlier = [wire_event("two-hours-ago", time="2026-11-20T08:15:00Z")]
    events = [wire_event("two-hours-ago", time="2026-11-20T10:15:00Z")]
    assert reasons_by_id(events, earlier, horizon_hours=1) == {"two-hours-ago": None}
    assert reasons_by_id(events, earlier, horizon_hours=2) == {"two-hours-ago": "duplicate"}


def test_an_earlier_copy_counts_even_when_it_was_itself_excluded():
    # Dedupe comes first (SPEC §3 order): the hour's copy is the same event as the earlier one,
    # whatever became of that one, so a copy never resurrects an excluded event.
    earlier = [wire_event("x", time="2026-11-20T09:00:00Z", environment="dev")]
    assert reasons_by_id([wire_event("x")], earlier) == {"x": "duplicate"}


def test_window_edges_are_half_open():
    events = [
        wire_event("first", time="2026-11-20T10:00:00.000Z"),
        wire_event("last", time="2026-11-20T10:59:59.999Z"),
    ]
    result = {row["event_id"]: row for row in classify(events)}
    assert set(result) == {"first", "last"}
    assert str(result["last"]["minute"]) == "2026-11-20 10:59:00"
    assert str(result["first"]["minute"]) == "2026-11-20 10:00:00"


# SPEC §3 trims all whitespace: spaces, tabs, CR and LF.
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"environment": "\tdev\t"}, {"exclusion_reason": "non_prod"}),
        ({"environment": "\r\nPPE\n"}, {"exclusion_reason": "non_prod"}),
        ({"environment": "\tprod\n"}, {"exclusion_reason": None, "cloud_environment": "prod"}),
        ({"environment": "\t\r\n"}, {"exclusion_reason": None, "cloud_environment": ""}),
        ({"base_type": "\tIncomingServiceRequest\r\n"}, {"exclusion_reason": None}),
        ({"test_header": "\t\n"}, {"exclusion_reason": None}),
        ({"quote_is_test": "\ttrue\r\n"}, {"exclusion_reason": "test_traffic"}),
        ({"is_test": "\nTRUE\t"}, {"exclusion_reason": "test_traffic"}),
        ({"request_type": "\tPOST\n"}, {"request_type": "POST"}),
        ({"cc": "ms.b.tel.scenario=\tsearch.query\t;ms.b.tel.partner=\r\ncontoso\n"},
         {"scenario_id": "search.query", "partner_id": "contoso"}),
        ({"cc": "x=y;\tms.b.tel.scenario\t=search.query,\n MS.B.TEL.PARTNER\n=fabrikam"},
         {"scenario_id": "search.query", "partner_id": "fabrikam"}),
        ({"cc": "ms.b.tel.scenario=\t", "sc_scenario": "\tlegacy.order\n"},
         {"scenario_id": "legacy.order"}),
        ({"cc": MISSING, "sc_partner": "\t\n", "caller": "\tapp\r\n"}, {"partner_id": "app"}),
        ({"cc": MISSING, "operation": "\tgetquote\r\n"},
         {"scenario_id": "checkout.quote", "exclusion_reason": None}),
    ],
)
def test_values_are_trimmed_of_tabs_and_line_breaks(fields, expected):
    row = outcome(**fields)
    assert {name: row[name] for name in expected} == expected


def test_allow_list_entries_are_trimmed_of_tabs_and_line_breaks():
    allow_list = "operation_name,scenario_id\n\tGetQuote\t,\tcheckout.quote\r\n"
    (row,) = classify([wire_event(cc=MISSING, operation="GetQuote")], allow_list=allow_list)
    assert (row["scenario_id"], row["exclusion_reason"]) == ("checkout.quote", None)


def test_translation_matches_scenario_and_partner_ids_padded_with_tabs():
    with closing(compute_connection()) as con:
        con.execute("create temp table daily_aggregate as select date '2026-11-20' as date, "
                    "'\tCheckout.Quote\n' as scenario_id, '\r\ncontoso\t' as partner_id")
        con.register("scenarios", csv_frame(SCENARIOS_CSV))
        con.register("customers", csv_frame(CUSTOMERS_CSV))
        run_stage(con, "curated", "translated", TimeWindow(DAY, DAY + timedelta(days=1)))
        (row,) = rows(con, "select * from translated")
    assert (row["scenario_key"], row["scenario_known"]) == ("checkout.quote", True)
    assert (row["partner_key"], row["partner_known"]) == ("contoso", True)


def test_event_ids_are_trimmed_of_all_whitespace_so_padded_copies_are_duplicates():
    kept = classify([wire_event("\tq1 \r\n"), wire_event("q1"), wire_event(" \t")])
    # One event kept, its padded copy a duplicate; a whitespace-only id is no id at all.
    assert sorted((row["event_id"], row["exclusion_reason"] or "") for row in kept) == [
        ("q1", ""), ("q1", "duplicate")]
    (verdict,) = classify_event_lines([json.dumps(wire_event("\t\n")).encode()])
    assert verdict.reason == "id is empty"
