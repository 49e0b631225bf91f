"""The traffic model one seed draws from: reference ids, per-scenario behaviour, incidents."""

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from telemetry_synth.vocabulary import (
    GATEWAY_CALLERS,
    STR,
    UNATTRIBUTED_OPERATIONS,
    UNKNOWN_PARTNERS,
    UNKNOWN_SCENARIO_OPERATION,
    UNKNOWN_SCENARIOS,
    json_text,
)

INCIDENTS_PER_DAY = 3
INSTANCES_PER_SERVICE = 12


@dataclass(frozen=True)
class Incident:
    """A window in which one scenario fails far more often and answers more slowly."""

    scenario_id: str
    start: datetime
    end: datetime
    error_rate: float
    latency_factor: float


def diurnal_factor(hour_of_day: int) -> float:
    """Load relative to the daily mean: 1.5 at 15:00 UTC, 0.5 at 03:00, averaging exactly 1."""
    return 1.0 + 0.5 * math.cos(2.0 * math.pi * (hour_of_day - 15) / 24.0)


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"reference file {path} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(columns) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}")
        return [{key: (row[key] or "").strip() for key in columns} for row in reader]


def _float_or(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def _camel_case(scenario_id: str) -> str:
    words = scenario_id.rsplit(".", 1)[-1].replace("-", "_").split("_")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


@dataclass
class Model:
    """Reference ids, per-scenario behaviour and the string vocabularies one seed draws from."""

    seed: int
    scenario_ids: list[str]
    scenario_p: np.ndarray
    partner_p: np.ndarray
    scenario_service: np.ndarray
    latency_median_ms: np.ndarray
    latency_sigma: np.ndarray
    error_rate: np.ndarray
    request_type: np.ndarray
    operation_table: np.ndarray
    operation_count: np.ndarray
    has_listed_operation: np.ndarray
    tokens: pa.Array
    token_scenario: int
    token_unknown_scenario: int
    token_partner: int
    token_unknown_partner: int
    token_gateway: int
    token_unattributed_operation: int
    token_unknown_scenario_operation: int
    token_empty: int
    n_unknown_scenarios: int
    n_unknown_partners: int
    role_vocab: pa.Array
    popular_scenarios: np.ndarray

    @classmethod
    def build(cls, reference_dir: Path, seed: int) -> "Model":
        scenarios = _read_csv(
            reference_dir / "scenarios.csv", ("scenario_id", "service", "slo_target_pct")
        )
        customers = _read_csv(reference_dir / "customers.csv", ("partner_id", "tier"))
        operations = _read_csv(
            reference_dir / "operation_scenarios.csv", ("operation_name", "scenario_id")
        )
        scenario_ids = [row["scenario_id"] for row in scenarios if row["scenario_id"]]
        partner_ids = [row["partner_id"] for row in customers if row["partner_id"]]
        if not scenario_ids or not partner_ids:
            raise ValueError(f"{reference_dir} needs at least one scenario and one partner")
        services = sorted({row["service"] or "unknown" for row in scenarios if row["scenario_id"]})
        scenario_service = np.array(
            [services.index(row["service"] or "unknown") for row in scenarios if row["scenario_id"]]
        )

        # Static behaviour comes from its own stream so it is the same for every hour drawn.
        rng = np.random.default_rng([seed, 0])
        n_scen, n_part = len(scenario_ids), len(partner_ids)
        scenario_rank = rng.permutation(n_scen)
        scenario_p = 1.0 / (scenario_rank + 1.0) ** 1.1
        scenario_p /= scenario_p.sum()
        # Bigger contracts send more traffic, so popularity follows tier, shuffled within it.
        tier_order = {"platinum": 0, "gold": 1, "silver": 2, "bronze": 3}
        tiers = [tier_order.get(row["tier"].lower(), 4) for row in customers if row["partner_id"]]
        partner_rank = np.empty(n_part, dtype=np.int64)
        partner_rank[np.lexsort((rng.random(n_part), tiers))] = np.arange(n_part)
        partner_p = 1.0 / (partner_rank + 1.0)
        partner_p /= partner_p.sum()
        latency_median_ms = np.exp(rng.uniform(math.log(8.0), math.log(350.0), n_scen))
        latency_sigma = rng.uniform(0.35, 0.8, n_scen)
        # Most scenarios spend a fraction of their error budget (100 - SLO target) on a normal
        # day; about one in eight runs hot, over budget, so the demo has something to show.
        budget = np.array([
            (100.0 - _float_or(row.get("slo_target_pct"), 99.9)) / 100.0
            for row in scenarios if row["scenario_id"]
        ]).clip(min=0.0001)
        spend = np.where(rng.random(n_scen) < 0.125, rng.uniform(1.2, 3.0, n_scen),
                         rng.uniform(0.05, 0.6, n_scen))
        error_rate = budget * spend

        listed = [row for row in operations if row["operation_name"] and row["scenario_id"]]
        listed_names = {row["operation_name"] for row in listed}
        operations_of: dict[str, list[str]] = {sid: [] for sid in scenario_ids}
        for row in listed:
            if row["scenario_id"] in operations_of:
                operations_of[row["scenario_id"]].append(row["operation_name"])

        def unlisted(name: str) -> str:
            while name in listed_names:
                name = "Invoke" + name
            return name

        own_operations = [
            operations_of[sid] or [unlisted(_camel_case(sid) or "Invoke")] for sid in scenario_ids
        ]
        unknown_scenarios = [s for s in UNKNOWN_SCENARIOS if s not in set(scenario_ids)]
        unknown_partners = [p for p in UNKNOWN_PARTNERS if p not in set(partner_ids)]
        unattributed = [unlisted(name) for name in UNATTRIBUTED_OPERATIONS]

        vocab: list[str] = []

        def add(values: Sequence[str]) -> int:
            vocab.extend(json_text(value) for value in values)
            return len(vocab) - len(values)

        token_scenario = add(scenario_ids)
        token_unknown_scenario = add(unknown_scenarios)
        token_partner = add(partner_ids)
        token_unknown_partner = add(unknown_partners)
        token_gateway = add(GATEWAY_CALLERS)
        token_unattributed_operation = add(unattributed)
        token_unknown_scenario_operation = add([unlisted(UNKNOWN_SCENARIO_OPERATION)])
        token_empty = add([""])
        operation_names = sorted({name for names in own_operations for name in names})
        token_operation = add(operation_names)
        width = max(len(names) for names in own_operations)
        operation_table = np.zeros((n_scen, width), dtype=np.int32)
        for index, names in enumerate(own_operations):
            for slot, name in enumerate(names):
                operation_table[index, slot] = token_operation + operation_names.index(name)

        def verb(name: str) -> int:
            for code, prefix in ((0, "Get"), (0, "List"), (2, "Put"), (3, "Delete")):
                if name.startswith(prefix):
                    return code
            return 1

        roles = [
            f"{json_text(service)}-fe_IN_{instance}"
            for service in services
            for instance in range(INSTANCES_PER_SERVICE)
        ]
        return cls(
            seed=seed,
            scenario_ids=scenario_ids,
            scenario_p=scenario_p,
            partner_p=partner_p,
            scenario_service=scenario_service,
            latency_median_ms=latency_median_ms,
            latency_sigma=latency_sigma,
            error_rate=error_rate,
            request_type=np.array([verb(names[0]) for names in own_operations], dtype=np.int8),
            operation_table=operation_table,
            operation_count=np.array([len(names) for names in own_operations]),
            has_listed_operation=np.array([bool(operations_of[sid]) for sid in scenario_ids]),
            tokens=pa.array(vocab, type=STR),
            token_scenario=token_scenario,
            token_unknown_scenario=token_unknown_scenario,
            token_partner=token_partner,
            token_unknown_partner=token_unknown_partner,
            token_gateway=token_gateway,
            token_unattributed_operation=token_unattributed_operation,
            token_unknown_scenario_operation=token_unknown_scenario_operation,
            token_empty=token_empty,
            n_unknown_scenarios=len(unknown_scenarios),
            n_unknown_partners=len(unknown_partners),
            role_vocab=pa.array(roles, type=STR),
            popular_scenarios=np.argsort(scenario_rank)[:15],
        )

    def incidents_on(self, day: datetime) -> list[tuple[int, Incident]]:
        """The incidents that start on `day`, each with its scenario index."""
        day_index = int(day.timestamp() // 86_400)
        # Keyed by day rather than by the requested range so any sub-range regenerates the
        # same traffic, incidents included.
        rng = np.random.default_rng([self.seed, 2, day_index])
        found = []
        for _ in range(INCIDENTS_PER_DAY):
            scenario = int(rng.choice(self.popular_scenarios))
            start = day + timedelta(minutes=int(rng.integers(0, 24 * 60)))
            end = start + timedelta(minutes=int(rng.integers(20, 91)))
            incident = Incident(
                scenario_id=self.scenario_ids[scenario],
                start=start,
                end=end,
                error_rate=round(float(rng.uniform(0.2, 0.6)), 3),
                latency_factor=round(float(rng.uniform(2.0, 5.0)), 2),
            )
            found.append((scenario, incident))
        return found

    def incidents_touching(self, start: datetime, end: datetime) -> list[tuple[int, Incident]]:
        """Incidents overlapping [start, end), including ones that began the day before."""
        day = start.replace(hour=0) - timedelta(days=1)
        found = []
        while day < end:
            found.extend(
                (scenario, incident)
                for scenario, incident in self.incidents_on(day)
                if incident.start < end and incident.end > start
            )
            day += timedelta(days=1)
        return sorted(found, key=lambda item: (item[1].start, item[1].scenario_id))

    def incidents_between(self, start: datetime, end: datetime) -> list[Incident]:
        """Incidents overlapping [start, end), clipped to it."""
        return [
            Incident(
                scenario_id=incident.scenario_id,
                start=max(incident.start, start),
                end=min(incident.end, end),
                error_rate=incident.error_rate,
                latency_factor=incident.latency_factor,
            )
            for _, incident in self.incidents_touching(start, end)
        ]
