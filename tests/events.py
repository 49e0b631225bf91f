"""Literal SPEC §2 events as they arrive on the wire: the one builder of tests and benchmarks."""

import json
from typing import Any

# Leaves a field out of the event, where None would send it as null.
MISSING = object()


def wire_event(
    event_id: str = "e1",
    time: Any = "2026-11-20T10:15:00.000Z",
    base_type: Any = "Ms.Qos.IncomingServiceRequest",
    environment: Any = "prod",
    cc: Any = "ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=contoso",
    status: Any = 0,
    latency: Any = 100.0,
    operation: Any = "GetQuote",
    caller: Any = "caller-app",
    request_type: Any = "GET",
    sc_scenario: Any = MISSING,
    sc_partner: Any = MISSING,
    test_header: Any = MISSING,
    quote_is_test: Any = MISSING,
    is_test: Any = MISSING,
    lib_ver: Any = "5.2.1",
) -> dict:
    """A SPEC §2 event as it arrives on the wire; MISSING leaves a field out."""

    def present(**fields: Any) -> dict:
        return {name: value for name, value in fields.items() if value is not MISSING}

    return present(
        id=event_id,
        time=time,
        data=present(
            baseType=base_type,
            cC=cc,
            scScenario=sc_scenario,
            scPartner=sc_partner,
            testHeader=test_header,
            quoteIsTest=quote_is_test,
            isTest=is_test,
            baseData=present(
                operationName=operation,
                callerName=caller,
                requestType=request_type,
                latencyMs=latency,
                requestStatus=status,
            ),
        ),
        ext={"cloud": present(environment=environment, roleInstance="ri-1"),
             "sll": present(libVer=lib_ver)},
    )


def as_lines(*events: dict | str) -> list[bytes]:
    return [(e if isinstance(e, str) else json.dumps(e)).encode() for e in events]


def ndjson(*events: dict | str) -> bytes:
    """A newline-delimited JSON body of the events, as a landing file or a POST carries it."""
    return b"\n".join(as_lines(*events)) + b"\n"
