"""Literal SPEC §2 events for the ingest tests."""

import copy
import json
from typing import Any

BASE_EVENT: dict[str, Any] = {
    "id": "evt-0",
    "time": "2026-11-20T10:15:03.120Z",
    "data": {
        "baseType": "Ms.Qos.IncomingServiceRequest",
        "cC": "ms.b.tel.scenario=purchase-quote;ms.b.tel.partner=contoso",
        "baseData": {
            "operationName": "GetQuote",
            "callerName": "web",
            "requestType": "POST",
            "latencyMs": 12.5,
            "requestStatus": 3,
        },
    },
    "ext": {
        "cloud": {"environment": "prod", "roleInstance": "vm-1"},
        "sll": {"libVer": "5.2.1"},
    },
}


def event(event_id: str = "evt-0", time: str = BASE_EVENT["time"], **data: Any) -> dict:
    made = copy.deepcopy(BASE_EVENT)
    made["id"] = event_id
    made["time"] = time
    made["data"].update(data)
    return made


def ndjson(*events: dict) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events) + b"\n"
