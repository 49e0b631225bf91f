"""Service level objectives as code: the optional `slos.yaml` beside the reference CSVs.

`scenarios.csv` stays the simple default: every scenario has one availability objective, its
`slo_target_pct`. The file adds, per scenario, latency objectives (the share of requests at or
under a threshold, from the minute latency histograms), per-partner-tier commitments, and, for
the monthly SLA statements, the credit schedule and the maintenance windows excluded from them.

The file (every section optional)::

    objectives:
      - scenario: checkout.purchase_quote   # a scenario_id of scenarios.csv, exactly
        kind: latency                       # availability | latency
        name: fast-quote                    # default: availability, or latency-<threshold>ms
        threshold_ms: 300                   # latency only: required, > 0
        target_pct: 99.0                    # latency only: required, 0 < t <= 100
        tiers: {gold: 99.5}                 # per partner tier (customers.csv), 0 < t <= 100
      - scenario: checkout.place_order
        kind: availability                  # its target is slo_target_pct of scenarios.csv
        tiers: {gold: 99.95, silver: 99.9}
    credits:                                # default DEFAULT_CREDITS; [] owes none
      - {below_pct: 99.9, credit_pct: 10}
    maintenance:
      - start: 2026-11-14T02:00:00Z         # ISO-8601; naive means UTC
        end: 2026-11-14T04:00:00Z           # after start; the window is [start, end)
        scenarios: "checkout.*"             # glob over scenario ids, default "*"
        partners: "*"                       # glob over partner ids, default "*"
        reason: planned database upgrade

Every scenario gets its availability objective whether or not the file names it. Errors carry
the line of the YAML node they concern (`path:LINE: reason`), and all of them are reported at once.
"""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from telemetry_core.yaml_file import ConfigFileError, NodeReader, compose, shown

KINDS = ("availability", "latency")


@dataclass(frozen=True)
class Objective:
    """One objective of one scenario: `target_pct` % of its requests good over the window."""

    scenario_id: str
    # Unique within the scenario: `availability`, or e.g. `latency-300ms` unless the file names it.
    name: str
    kind: str
    target_pct: float
    # Latency objectives only: a request is good when its latency is at or under this.
    threshold_ms: float | None = None
    # Commitments that differ from target_pct for partners of a tier: ((tier, target_pct), ...).
    tier_targets: tuple[tuple[str, float], ...] = ()
    # The line of slos.yaml that declares it; None for a scenarios.csv default.
    line: int | None = None

    @property
    def subject(self) -> str:
        """The id its mood is judged and notified under: the scenario id for availability (as
        before objectives existed), `scenario/name` for any other."""
        if self.kind == "availability":
            return self.scenario_id
        return f"{self.scenario_id}/{self.name}"

    def target_for(self, tier: str | None) -> float:
        """The commitment to a partner of `tier`."""
        return dict(self.tier_targets).get(tier or "", self.target_pct)


@dataclass(frozen=True)
class CreditStep:
    """Attainment below `below_pct` owes `credit_pct` % of the month's charge."""

    below_pct: float
    credit_pct: float


@dataclass(frozen=True)
class MaintenanceWindow:
    """[start, end) (naive UTC) excluded from the statements of matching scenarios and partners."""

    start: datetime
    end: datetime
    scenarios: str = "*"
    partners: str = "*"
    reason: str = ""
    line: int | None = None

    def covers(self, scenario_id: str, partner_id: str) -> bool:
        return (fnmatchcase(scenario_id.lower(), self.scenarios.lower())
                and fnmatchcase(partner_id.lower(), self.partners.lower()))


DEFAULT_CREDITS = (CreditStep(99.9, 10.0), CreditStep(99.0, 25.0))


@dataclass(frozen=True)
class SloCatalog:
    """Every scenario's objectives, the credit schedule and the maintenance windows."""

    objectives: tuple[Objective, ...]
    credits: tuple[CreditStep, ...] = DEFAULT_CREDITS
    maintenance: tuple[MaintenanceWindow, ...] = ()
    source: Path | None = None

    def credit_pct(self, attainment_pct: float | None, commitment_pct: float) -> float:
        """The credit owed for `attainment_pct` against `commitment_pct`: none when the
        commitment is met (or nothing was measured), else the largest step it falls below."""
        if attainment_pct is None or attainment_pct >= commitment_pct:
            return 0.0
        return max((step.credit_pct for step in self.credits if attainment_pct < step.below_pct),
                   default=0.0)


class SloFileError(ConfigFileError):
    """slos.yaml breaks its rules; `errors` lists each as `path:line: reason`."""


def load_slos(
    path: Path | None,
    scenario_targets: Mapping[str, float],
    tiers: Collection[str],
) -> SloCatalog:
    """The catalog for the reference scenarios (`scenario_id -> slo_target_pct`, from
    scenarios.csv) and customer tiers, with the objectives, credits and maintenance windows of
    `path` (None: the defaults alone). Raises SloFileError naming every bad line."""
    if path is None:
        return SloCatalog(objectives=_with_defaults((), scenario_targets))
    try:
        root = compose(Path(path), "objectives file")
    except ConfigFileError as error:
        raise SloFileError(error.errors) from error
    reader = _Reader(Path(path), scenario_targets, tiers)
    catalog = reader.catalog(root)
    try:
        reader.raise_errors()
    except ConfigFileError as error:
        raise SloFileError(error.errors) from None
    return catalog


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}
# Objective names end up in mood subjects (`scenario/name`) and OpenSLO metadata names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOP_KEYS = ("objectives", "credits", "maintenance")
_OBJECTIVE_KEYS = ("scenario", "kind", "name", "threshold_ms", "target_pct", "tiers")
_CREDIT_KEYS = ("below_pct", "credit_pct")
_MAINTENANCE_KEYS = ("start", "end", "scenarios", "partners", "reason")


def default_objective_name(kind: str, threshold_ms: float | None) -> str:
    return "availability" if kind == "availability" else f"latency-{threshold_ms:g}ms"


def _with_defaults(
    declared: Collection[Objective], scenario_targets: Mapping[str, float]
) -> tuple[Objective, ...]:
    """The declared objectives plus an availability objective for every scenario without one."""
    have = {o.scenario_id for o in declared if o.kind == "availability"}
    defaults = [
        Objective(scenario_id=s, name="availability", kind="availability",
                  target_pct=float(target))
        for s, target in scenario_targets.items() if s not in have
    ]
    return tuple(sorted([*declared, *defaults],
                        key=lambda o: (o.scenario_id, _KIND_ORDER[o.kind], o.name)))


class _Reader(NodeReader):
    """Walks slos.yaml's nodes, so that every complaint can name its line."""

    def __init__(self, path: Path, scenario_targets: Mapping[str, float], tiers: Collection[str]):
        super().__init__(path)
        self.scenario_targets = scenario_targets
        self.tiers = set(tiers)

    def percent(self, node: Node, what: str) -> float | None:
        value = self.number(node, what)
        if value is not None and not 0 < value <= 100:
            self.error(node, f"{what} {value:g} is outside 0 < t <= 100")
            return None
        return value

    def catalog(self, root: Node | None) -> SloCatalog:
        if root is None:
            return SloCatalog(objectives=_with_defaults((), self.scenario_targets),
                              source=self.path)
        top = self.mapping(root, "the top level", _TOP_KEYS)
        if top is None:
            return SloCatalog(objectives=())
        objectives = self.objectives(top.get("objectives"))
        credits = self.credits(top["credits"]) if "credits" in top else DEFAULT_CREDITS
        maintenance = self.maintenance(top.get("maintenance"))
        return SloCatalog(objectives=_with_defaults(objectives, self.scenario_targets),
                          credits=credits, maintenance=maintenance, source=self.path)

    def objectives(self, node: Node | None) -> list[Objective]:
        found: list[Objective] = []
        by_name: dict[tuple[str, str], int] = {}
        by_meaning: dict[tuple[str, str, float | None], int] = {}
        for entry in self.sequence(node, "objectives") if node is not None else []:
            objective = self.objective(entry)
            if objective is None:
                continue
            line = objective.line or 0
            name_key = (objective.scenario_id, objective.name)
            meaning_key = (objective.scenario_id, objective.kind, objective.threshold_ms)
            earlier = by_name.get(name_key) or by_meaning.get(meaning_key)
            if earlier is not None:
                what = (f"named {objective.name!r}" if name_key in by_name
                        else f"{objective.kind}" + (f" at {objective.threshold_ms:g} ms"
                                                    if objective.threshold_ms else ""))
                self.error(entry, f"duplicate objective: {objective.scenario_id} already has an "
                                  f"objective {what} (line {earlier})")
                continue
            by_name[name_key] = by_meaning[meaning_key] = line
            found.append(objective)
        return found

    def objective(self, node: Node) -> Objective | None:
        entries = self.mapping(node, "an objective", _OBJECTIVE_KEYS, ("scenario", "kind"))
        if entries is None:
            return None
        ok = True
        scenario = self.text(entries["scenario"], "scenario") if "scenario" in entries else None
        if scenario is not None and scenario not in self.scenario_targets:
            self.error(entries["scenario"], f"unknown scenario {scenario!r}: not a scenario_id "
                                            "of scenarios.csv")
            scenario = None
        kind = self.text(entries["kind"], "kind") if "kind" in entries else None
        if kind is not None and kind not in KINDS:
            self.error(entries["kind"], f"unknown kind {kind!r} (one of: {', '.join(KINDS)})")
            kind = None
        threshold = target = None
        if kind == "availability":
            if "threshold_ms" in entries:
                self.error(entries["threshold_ms"],
                           "threshold_ms belongs to latency objectives, not availability")
                ok = False
            if "target_pct" in entries:
                csv_target = (f" ({self.scenario_targets[scenario]:g} for {scenario})"
                              if scenario is not None else "")
                self.error(entries["target_pct"],
                           "an availability objective takes no target_pct here: its target is "
                           f"slo_target_pct in scenarios.csv{csv_target}")
                ok = False
            if scenario is not None:
                target = float(self.scenario_targets[scenario])
        elif kind == "latency":
            if "threshold_ms" not in entries:
                self.error(node, "a latency objective needs threshold_ms")
            else:
                threshold = self.number(entries["threshold_ms"], "threshold_ms")
                if threshold is not None and threshold <= 0:
                    self.error(entries["threshold_ms"],
                               f"threshold_ms must be positive, not {threshold:g}")
                    threshold = None
            if "target_pct" not in entries:
                self.error(node, "a latency objective needs target_pct")
            else:
                target = self.percent(entries["target_pct"], "target_pct")
            ok = ok and threshold is not None and target is not None
        name = None
        if "name" in entries:
            name = self.text(entries["name"], "name")
            if name is not None and not _NAME.match(name):
                self.error(entries["name"], f"name {name!r} may hold only letters, digits, "
                                            "'.', '_' and '-', starting with a letter or digit")
                name = None
            ok = ok and name is not None
        tier_targets = self.tier_targets(entries["tiers"]) if "tiers" in entries else ()
        if not ok or tier_targets is None or scenario is None or kind is None or target is None:
            return None
        return Objective(
            scenario_id=scenario,
            name=name or default_objective_name(kind, threshold),
            kind=kind,
            target_pct=target,
            threshold_ms=threshold,
            tier_targets=tier_targets,
            line=node.start_mark.line + 1,
        )

    def tier_targets(self, node: Node) -> tuple[tuple[str, float], ...] | None:
        entries = self.mapping_of_any(node, "tiers")
        if entries is None:
            return None
        found: list[tuple[str, float]] = []
        ok = True
        for key_node, value_node in entries:
            tier = self.value(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(tier, str) or tier not in self.tiers:
                known = ", ".join(sorted(self.tiers)) or "none"
                self.error(key_node, f"unknown tier {shown(key_node)} "
                                     f"(customers.csv has: {known})")
                ok = False
                continue
            if any(tier == seen for seen, _ in found):
                self.error(key_node, f"duplicate key {tier!r} in tiers")
                ok = False
                continue
            target = self.percent(value_node, f"the {tier} target")
            if target is None:
                ok = False
                continue
            found.append((tier, target))
        return tuple(sorted(found)) if ok else None

    def mapping_of_any(self, node: Node, what: str) -> list[tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping such as {{gold: 99.95}}")
            return None
        return list(node.value)

    def credits(self, node: Node) -> tuple[CreditStep, ...]:
        if self.is_null(node):
            return DEFAULT_CREDITS
        steps: list[CreditStep] = []
        seen: dict[float, int] = {}
        for entry in self.sequence(node, "credits"):
            entries = self.mapping(entry, "a credit step", _CREDIT_KEYS, _CREDIT_KEYS)
            if entries is None or not all(k in entries for k in _CREDIT_KEYS):
                continue
            below = self.percent(entries["below_pct"], "below_pct")
            credit = self.percent(entries["credit_pct"], "credit_pct")
            if below is None or credit is None:
                continue
            if below in seen:
                self.error(entry, f"duplicate credit step below {below:g} % "
                                  f"(line {seen[below]})")
                continue
            seen[below] = entry.start_mark.line + 1
            steps.append(CreditStep(below_pct=below, credit_pct=credit))
        return tuple(sorted(steps, key=lambda s: -s.below_pct))

    def maintenance(self, node: Node | None) -> tuple[MaintenanceWindow, ...]:
        windows: list[MaintenanceWindow] = []
        for entry in self.sequence(node, "maintenance") if node is not None else []:
            entries = self.mapping(entry, "a maintenance window", _MAINTENANCE_KEYS,
                                   ("start", "end"))
            if entries is None:
                continue
            start = self.timestamp(entries["start"], "start") if "start" in entries else None
            end = self.timestamp(entries["end"], "end") if "end" in entries else None
            ok = start is not None and end is not None
            if start is not None and end is not None and end <= start:
                self.error(entries["end"], f"end {end.isoformat()} is not after start "
                                           f"{start.isoformat()}")
                ok = False
            globs: dict[str, str] = {}
            for key in ("scenarios", "partners"):
                if key in entries:
                    glob = self.text(entries[key], key)
                    ok = ok and glob is not None
                    globs[key] = glob or "*"
            scenarios = globs.get("scenarios", "*")
            if "scenarios" in entries and not any(
                    fnmatchcase(s.lower(), scenarios.lower()) for s in self.scenario_targets):
                self.error(entries["scenarios"], f"scenarios {scenarios!r} matches no scenario "
                                                 "in scenarios.csv")
                ok = False
            reason = ""
            if "reason" in entries and not self.is_null(entries["reason"]):
                value = self.value(entries["reason"]) if isinstance(
                    entries["reason"], ScalarNode) else None
                if not isinstance(value, str):
                    self.error(entries["reason"], "reason must be a string")
                    ok = False
                else:
                    reason = value.strip()
            if ok and start is not None and end is not None:
                windows.append(MaintenanceWindow(
                    start=start, end=end, scenarios=scenarios,
                    partners=globs.get("partners", "*"), reason=reason,
                    line=entry.start_mark.line + 1,
                ))
        return tuple(windows)
