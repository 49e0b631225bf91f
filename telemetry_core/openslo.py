"""The objectives catalog as OpenSLO v1 documents (https://github.com/OpenSLO/OpenSLO).

One `Service` per service of scenarios.csv and one `SLO` per objective. Each SLO's indicator is
a ratio of good to total requests, each count a DuckDB query over the warehouse views, to run
with `$window_start`/`$window_end` (the half-open window to judge) and the listed parameters.
Tier commitments and the scenario/subject ids travel as annotations: OpenSLO has one target
per objective and no notion of a partner tier.
"""

import hashlib
import re
from collections.abc import Mapping
from typing import NamedTuple

from telemetry_core.slos import Objective, SloCatalog
from telemetry_core.sql import BUCKET_LATENCY_SQL

API_VERSION = "openslo/v1"
ANNOTATION_PREFIX = "slo.telemetry/"
METRIC_SOURCE_TYPE = "DuckDB"
_DNS_LABEL_MAX = 63

AVAILABILITY_GOOD_SQL = """\
select cast(coalesce(sum(successful_requests), 0) as bigint) as good
from aggregate.minute_aggregate
where
    lower(trim(scenario_id)) = $scenario_key
    and minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)"""

AVAILABILITY_TOTAL_SQL = """\
select cast(coalesce(sum(total_requests), 0) as bigint) as total
from aggregate.minute_aggregate
where
    lower(trim(scenario_id)) = $scenario_key
    and minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)"""

# Judged as published.objective_daily and the mood judge it: a bucket is good when its
# representative latency is at or under the threshold.
LATENCY_GOOD_SQL = """\
select cast(coalesce(sum(case
    when """ + BUCKET_LATENCY_SQL + """ <= $threshold_ms then requests
    else 0
end), 0) as bigint) as good
from aggregate.minute_latency
where
    lower(trim(scenario_id)) = $scenario_key
    and minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)"""

LATENCY_TOTAL_SQL = """\
select cast(coalesce(sum(requests), 0) as bigint) as total
from aggregate.minute_latency
where
    lower(trim(scenario_id)) = $scenario_key
    and minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)"""


class ScenarioInfo(NamedTuple):
    """What scenarios.csv says of a scenario besides its target."""

    name: str
    service: str


class ExportError(ValueError):
    """The catalog holds something OpenSLO v1 cannot state."""


def dns_label(text: str) -> str:
    """`text` as a DNS-1123 label (lowercase alphanumerics and '-', at most 63): runs of other
    characters become '-'; a longer result keeps a hash of `text` so that it stays distinct."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    if len(label) <= _DNS_LABEL_MAX:
        return label
    return f"{label[:_DNS_LABEL_MAX - 9].rstrip('-')}-{_digest(text)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _unique(label: str, source: str, taken: set[str]) -> str:
    """`label`, or a hashed variant when two sources would share one (`a.b` and `a_b`)."""
    if label in taken:
        label = f"{label[:_DNS_LABEL_MAX - 9].rstrip('-')}-{_digest(source)}"
    taken.add(label)
    return label


def _fraction(pct: float, objective: Objective) -> float:
    # OpenSLO's target is in [0, 1): a 100 % objective allows no failure and has no budget.
    if not 0 <= pct < 100:
        raise ExportError(
            f"{objective.scenario_id}/{objective.name}: a target of {pct:g} % cannot be "
            "stated in OpenSLO v1 (its target must be at least 0 and below 1)"
        )
    return round(pct / 100.0, 12)


def openslo_documents(
    catalog: SloCatalog,
    scenarios: Mapping[str, ScenarioInfo],
    *,
    budget_window: str,
    latency_growth: float,
    zero_bucket: int,
) -> list[dict]:
    """The Service and SLO documents for `catalog`; `budget_window` is the rolling error-budget
    window as a duration shorthand (e.g. `28d`), the latency figures those of the buckets of
    aggregate.minute_latency. Raises ExportError for a target of 100 %."""
    services: dict[str, str] = {}
    taken_services: set[str] = set()
    for service in sorted({info.service for info in scenarios.values()}):
        services[service] = _unique(dns_label(service), service, taken_services)
    documents: list[dict] = [
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": label, "displayName": service},
            "spec": {"description": f"The {service} service of scenarios.csv, "
                                    f"{sum(i.service == service for i in scenarios.values())} "
                                    "scenario(s)."},
        }
        for service, label in services.items()
    ]
    taken_slos: set[str] = set()
    for objective in catalog.objectives:
        info = scenarios.get(objective.scenario_id)
        if info is None:
            raise ExportError(f"{objective.scenario_id}: not a scenario of scenarios.csv")
        source = f"{objective.scenario_id}-{objective.name}"
        name = _unique(dns_label(source), source, taken_slos)
        documents.append(_slo(objective, info, name, services[info.service], budget_window,
                              latency_growth, zero_bucket))
    return documents


def _slo(objective: Objective, info: ScenarioInfo, name: str, service: str,
         budget_window: str, latency_growth: float, zero_bucket: int) -> dict:
    # Matched as the warehouse matches scenario ids: trimmed and case-insensitively.
    total_parameters: dict[str, object] = {"scenario_key": objective.scenario_id.strip().lower()}
    good_parameters = dict(total_parameters)
    if objective.kind == "latency" and objective.threshold_ms is not None:
        what = f"within {objective.threshold_ms:g} ms"
        good_sql, total_sql = LATENCY_GOOD_SQL, LATENCY_TOTAL_SQL
        good_parameters |= {"threshold_ms": objective.threshold_ms,
                            "latency_growth": latency_growth, "zero_bucket": zero_bucket}
        description = (
            f"Share of {objective.scenario_id} requests with a latency at or under "
            f"{objective.threshold_ms:g} ms, counted from the log-spaced latency buckets "
            "(only the one bucket that straddles the threshold can be misjudged)."
        )
    else:
        what = "successful"
        good_sql, total_sql = AVAILABILITY_GOOD_SQL, AVAILABILITY_TOTAL_SQL
        description = (f"Share of {objective.scenario_id} requests that succeeded "
                       "(the target is slo_target_pct of scenarios.csv).")
    annotations = {
        f"{ANNOTATION_PREFIX}scenario": objective.scenario_id,
        f"{ANNOTATION_PREFIX}objective": objective.name,
        f"{ANNOTATION_PREFIX}subject": objective.subject,
    }
    for tier, target in objective.tier_targets:
        _fraction(target, objective)
        annotations[f"{ANNOTATION_PREFIX}tier-target.{dns_label(tier)}"] = f"{target:g}"
    display = f"{info.name}: {objective.target_pct:g} % of requests {what}"

    def source(sql: str, parameters: dict[str, object]) -> dict:
        return {"metricSource": {"type": METRIC_SOURCE_TYPE,
                                 "spec": {"query": sql, "parameters": parameters}}}

    return {
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": {
            "name": name,
            "displayName": display,
            "labels": {"service": service, "kind": objective.kind},
            "annotations": annotations,
        },
        "spec": {
            "description": description,
            "service": service,
            "indicator": {
                "metadata": {"name": name, "displayName": f"{info.name}: requests {what}"},
                "spec": {"ratioMetric": {
                    "counter": False,
                    "good": source(good_sql, good_parameters),
                    "total": source(total_sql, total_parameters),
                }},
            },
            "timeWindow": [{"duration": budget_window, "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"displayName": display,
                            "target": _fraction(objective.target_pct, objective)}],
        },
    }
