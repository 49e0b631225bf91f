"""SPEC §3 keep/derive rules, on literal events run through the raw and filtered SQL."""

import pytest

from tests.events import MISSING, wire_event
from tests.helpers import classify


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


def test_window_edges_are_half_open():
    events = [
        wire_event("first", time="2026-11-20T10:00:00.000Z"),
        wire_event("last", time="2026-11-20T10:59:59.999Z"),
    ]
    result = {row["event_id"]: row for row in classify(events)}
    assert set(result) == {"first", "last"}
    assert str(result["last"]["minute"]) == "2026-11-20 10:59:00"
    assert str(result["first"]["minute"]) == "2026-11-20 10:00:00"
