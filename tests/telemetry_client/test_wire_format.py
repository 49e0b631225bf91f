"""The Python client against the wire-format cases both clients share (clients/golden)."""

import json
import re
from datetime import UTC, datetime

import pytest
from telemetry_client.events import correlation_from_baggage, format_time

from telemetry_client import build_event, status_from_http
from tests.helpers import REPO

GOLDEN = json.loads((REPO / "clients" / "golden" / "events.json").read_text())


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


@pytest.mark.parametrize("case", GOLDEN["events"], ids=lambda case: case["name"])
def test_the_same_inputs_give_the_same_event(case: dict) -> None:
    event = build_event(**{snake_case(key): value for key, value in case["input"].items()})
    # Through JSON, as the receiver sees it; field order included.
    assert json.dumps(event, ensure_ascii=False) == json.dumps(case["event"], ensure_ascii=False)


def test_times_and_statuses_match_the_cases() -> None:
    for case in GOLDEN["times"]:
        assert format_time(datetime.fromtimestamp(case["epochMs"] / 1000, UTC)) == case["time"]
    assert [[code, status_from_http(code)] for code, _ in GOLDEN["httpStatus"]] == (
        GOLDEN["httpStatus"]
    )


@pytest.mark.parametrize(("header", "expected"), [
    ("ms.b.tel.scenario=checkout.quote,ms.b.tel.partner=contoso", ("checkout.quote", "contoso")),
    (" MS.B.TEL.PARTNER = fabrikam ;ttl=3 , other=1", (None, "fabrikam")),
    ("ms.b.tel.scenario=a%2Cb%3Bc", ("a,b;c", None)),
    ("ms.b.tel.scenario=,ms.b.tel.partner", (None, None)),
    ("", (None, None)),
    (None, (None, None)),
])  # fmt: skip
def test_scenario_and_partner_are_read_from_w3c_baggage(header, expected) -> None:  # type: ignore[no-untyped-def]
    assert correlation_from_baggage(header) == expected


def test_an_infinite_latency_is_refused_and_odd_ones_are_zero() -> None:
    base = GOLDEN["events"][1]["input"]
    kwargs = {snake_case(key): value for key, value in base.items()}
    with pytest.raises(ValueError, match="finite"):
        build_event(**{**kwargs, "latency_ms": float("inf")})
    for odd in (float("nan"), float("-inf"), -1.0):
        assert build_event(**{**kwargs, "latency_ms": odd})["data"]["baseData"]["latencyMs"] == 0
