"""The fixed vocabularies, shares and edge cases every seed draws from, and their JSON text.

Codes drawn elsewhere index these tuples, so their order is part of the output: reordering
one changes the bytes written for every seed.
"""

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

# large_string keeps one file's text addressable past 2 GiB at very high volumes.
STR = pa.large_string()

# Share of events with each edge case; each is small enough to leave the headline numbers
# realistic and large enough to show up in a few thousand events.
DUPLICATE_RATE = 0.005
ZERO_LATENCY_RATE = 0.002
# A missing status counts as a failure: rare enough not to eat a 99.95 % error budget alone.
MISSING_STATUS_RATE = 0.0002
UNKNOWN_SCENARIO_RATE = 0.001
UNKNOWN_PARTNER_RATE = 0.002

BASE_TYPES = (
    ("Ms.Qos.IncomingServiceRequest", 0.985),
    ("ms.qos.incomingservicerequest", 0.003),
    ("IncomingServiceRequest", 0.003),
    ("MS.QOS.INCOMINGSERVICEREQUEST", 0.001),
    (" Ms.Qos.IncomingServiceRequest ", 0.001),
    ("Ms.Qos.OutgoingServiceRequest", 0.005),
    ("Ms.Qos.ExceptionEvent", 0.002),
)
# None means the field is absent; "" means present and empty, which the contract treats alike.
ENVIRONMENTS = (
    ("prod", 0.784),
    ("prod-eu", 0.10),
    ("prod-us", 0.08),
    ("PROD", 0.003),
    ("", 0.004),
    (None, 0.004),
    ("prod-test", 0.003),
    ("nonprod-eu", 0.003),
    (" Prod ", 0.002),
    ("dev", 0.003),
    ("ppe", 0.003),
    ("eu-int", 0.002),
    ("svc-perf", 0.002),
    ("NonProd", 0.002),
    ("sandbox", 0.002),
    ("int", 0.001),
    ("test", 0.001),
    ("non-prod", 0.001),
)
TEST_HEADERS = (
    (None, 0.93),
    ("", 0.065),
    ("synthetic-monitor", 0.003),
    ("loadtest-7", 0.002),
)
QUOTE_IS_TEST = (
    (None, 0.90),
    ("", 0.05),
    ("false", 0.045),
    ("true", 0.002),
    ("True", 0.002),
    ("TRUE", 0.001),
)
IS_TEST = ((None, 0.92), ("", 0.03), ("false", 0.047), ("true", 0.003))
MODERN_LIB_VERSIONS = ("5.0.2", "5.2.1", "5.3.0", "6.0.1")
LEGACY_LIB_VERSIONS = ("4.2.0", "4.6.3", "4.8.1")
REQUEST_TYPES = ("GET", "POST", "PUT", "DELETE", "Read", "Write")
SUCCESS_STATUS_P = (0.90, 0.05, 0.03, 0.015, 0.005)  # statuses 0-4
FAILURE_STATUS_P = (0.5, 0.3, 0.2)  # statuses 5-7
MISSING_STATUS = 8
GATEWAY_CALLERS = ("edge-gateway", "storefront-web", "mobile-app-ios", "partner-api")
UNATTRIBUTED_OPERATIONS = ("HealthCheck", "GetMetrics", "Ping", "GetConfig", "PostTelemetry")
UNKNOWN_SCENARIOS = ("checkout.express_pay", "labs.preview_feature", "search.semantic_beta")
UNKNOWN_PARTNERS = ("trial-4f1c", "unregistered-reseller", "acme-onboarding")
UNKNOWN_SCENARIO_OPERATION = "PostPreviewFeature"
NOT_JSON_LINES = (
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "ERROR connection reset by peer while flushing telemetry batch",
    "{'id': 'python-repr', 'time': None}",
    "id,time,data.baseType",
)

# How an event names its scenario and partner (SPEC §3 precedence is cC, then sc*, then the
# operation allow-list or callerName).
MODE_CC, MODE_LEGACY, MODE_OP_ONLY, MODE_CALLER_PARTNER = 0, 1, 2, 3
MODE_NO_PARTNER, MODE_UNATTRIBUTED, MODE_EMPTY_CC_SCENARIO = 4, 5, 6
MODE_P = (0.835, 0.07, 0.05, 0.03, 0.003, 0.006, 0.006)

# Correlation-context templates: head + first value + mid + second value + tail, where a value
# is 0 (none), 1 (scenario) or 2 (partner).
CC_TEMPLATES = (
    ("", "", "", 0, 0),  # absent
    (',"cC":"', "", '"', 0, 0),  # empty
    (',"cC":"ms.b.tel.scenario=', ";ms.b.tel.partner=", '"', 1, 2),
    (
        ',"cC":"ms.b.tel.market=en-US;ms.b.tel.scenario=',
        ";ms.b.tel.partner=",
        ';ms.b.tel.flight=ring1"',
        1,
        2,
    ),
    (',"cC":"MS.B.Tel.Scenario=', ";Ms.b.TEL.partner=", '"', 1, 2),
    (',"cC":" ms.b.tel.scenario = ', " ; ms.b.tel.partner = ", ' "', 1, 2),
    (',"cC":"ms.b.tel.scenario=', ",ms.b.tel.partner=", '"', 1, 2),
    (',"cC":"ms.b.tel.partner=', ";ms.b.tel.scenario=", '"', 2, 1),
    (',"cC":"ms.b.tel.scenario=', ";ms.b.tel.partner=", ';"', 1, 2),
    (',"cC":"ms.b.tel.scenario=', "", '"', 1, 0),
    (',"cC":"ms.b.tel.partner=', "", '"', 2, 0),
    (',"cC":"ms.b.qos.rootActivityId=4bf92f35;ms.b.tel.market=en-US"', "", "", 0, 0),
    (',"cC":"ms.b.tel.scenario=;ms.b.tel.partner=', "", '"', 2, 0),
)
CC_ABSENT, CC_EMPTY, CC_STANDARD = 0, 1, 2
CC_SCENARIO_ONLY, CC_PARTNER_ONLY, CC_NON_TELEMETRY, CC_EMPTY_SCENARIO = 9, 10, 11, 12
# Templates 2-8 all carry both ids; the non-standard ones exercise the parsing rules.
CC_BOTH_P = (0.965, 0.02, 0.003, 0.003, 0.003, 0.003, 0.003)

KIND_EVENT, KIND_BLANK = 0, 9
KIND_NOT_JSON, KIND_TRUNCATED, KIND_MISSING_ID, KIND_MISSING_TIME = 1, 2, 3, 4
KIND_MISSING_BASE_TYPE, KIND_LATENCY_STRING, KIND_ID_NUMBER, KIND_STATUS_STRING = 5, 6, 7, 8
MALFORMED_KINDS = np.arange(1, 9, dtype=np.int8)
# Regex surgery on a rendered line; every rendered line matches each pattern exactly once.
MALFORMED_REWRITES = {
    KIND_MISSING_ID: (r'^\{"id":"[^"]*",', "{"),
    KIND_MISSING_TIME: (r'"time":"[^"]*",', ""),
    KIND_MISSING_BASE_TYPE: (r'"baseType":"[^"]*",', ""),
    KIND_LATENCY_STRING: (r'"latencyMs":[0-9.]+', '"latencyMs":"fast"'),
    KIND_ID_NUMBER: (r'^\{"id":"[^"]*"', '{"id":40217'),
    KIND_STATUS_STRING: (r'"requestStatus":[0-9]+', '"requestStatus":"OK"'),
}
# Every cut is shorter than the shortest line the renderer can produce (about 260
# characters), so a truncated line is never a complete event by accident.
TRUNCATE_AT = (31, 87, 124, 160)


def json_text(value: str) -> str:
    """The body of a JSON string literal, so reference ids with quotes still give valid lines."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _fragments(
    key: str, weighted: Sequence[tuple[str | None, float]], trail: str = ""
) -> list[str]:
    """JSON text for each value of a small optional string field: absent, or `"key":"value"`."""
    return [
        "" if value is None else f'"{key}":"{json_text(value)}"{trail}' for value, _ in weighted
    ]


def _vocab(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=STR)


BASE_TYPE_VOCAB = _vocab(json_text(value) for value, _ in BASE_TYPES)
CC_HEAD, CC_MID, CC_TAIL = (_vocab(t[i] for t in CC_TEMPLATES) for i in range(3))
CALLER_HEAD = _vocab(["", ',"callerName":"', ',"callerName":"'])
SC_SCENARIO_HEAD = _vocab(["", ',"scScenario":"', ',"scScenario":"'])
SC_PARTNER_HEAD = _vocab(["", ',"scPartner":"', ',"scPartner":"'])
CLOSE_IF_PRESENT = _vocab(["", '"', '"'])
REQUEST_TYPE_VOCAB = _vocab(REQUEST_TYPES)
STATUS_VOCAB = _vocab([f',"requestStatus":{code}' for code in range(8)] + [""])
TEST_HEADER_VOCAB = _vocab("," + f if f else "" for f in _fragments("testHeader", TEST_HEADERS))
QUOTE_IS_TEST_VOCAB = _vocab("," + f if f else "" for f in _fragments("quoteIsTest", QUOTE_IS_TEST))
IS_TEST_VOCAB = _vocab("," + f if f else "" for f in _fragments("isTest", IS_TEST))
ENVIRONMENT_VOCAB = _vocab(_fragments("environment", ENVIRONMENTS, trail=","))
LIB_VERSION_VOCAB = _vocab(MODERN_LIB_VERSIONS + LEGACY_LIB_VERSIONS)
NOT_JSON_VOCAB = _vocab(line + "\n" for line in NOT_JSON_LINES)
