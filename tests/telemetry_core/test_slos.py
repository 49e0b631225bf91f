"""slos.yaml: the catalog it yields, every class of mistake named by its line, the defaults, and
the OpenSLO documents exported from it (validated against the official v1 schema)."""

import csv
import json
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from telemetry_core.openslo import ExportError, ScenarioInfo, dns_label, openslo_documents
from telemetry_core.settings import Settings
from telemetry_core.slos import (
    DEFAULT_CREDITS,
    CreditStep,
    MaintenanceWindow,
    Objective,
    SloFileError,
    load_slos,
)
from tests.helpers import REPO

REFERENCE = REPO / "data" / "reference"
EXAMPLE = REPO / "deploy" / "slos.example.yaml"
SCHEMA_DIR = Path(__file__).parent / "openslo" / "v1"


def reference_scenarios() -> dict[str, dict[str, str]]:
    with (REFERENCE / "scenarios.csv").open(newline="") as file:
        return {row["scenario_id"]: row for row in csv.DictReader(file)}


SCENARIOS = reference_scenarios()
TARGETS = {s: float(row["slo_target_pct"]) for s, row in SCENARIOS.items()}
with (REFERENCE / "customers.csv").open(newline="") as _file:
    TIERS = {row["tier"] for row in csv.DictReader(_file)}


def openslo_validator() -> Draft7Validator:
    """The vendored OpenSLO v1 schema, every `$ref` resolved from the local files."""
    parts = [json.loads(p.read_text()) for p in SCHEMA_DIR.rglob("*.schema.json")]
    registry = Registry().with_resources(
        (part["$id"], Resource.from_contents(part)) for part in parts
    )
    schema = json.loads((SCHEMA_DIR / "openslo.schema.json").read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, registry=registry)


def schema_errors(documents: list[dict]) -> list[str]:
    validator = openslo_validator()
    return [f"{d.get('kind')} {d.get('metadata', {}).get('name')}: {e.message}"
            for d in documents for e in validator.iter_errors(d)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slos.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(SloFileError) as raised:
        load_slos(path, TARGETS, TIERS)
    assert str(raised.value) == "\n".join(raised.value.errors)
    return raised.value.errors


GOOD = """\
    objectives:
      - scenario: checkout.purchase_quote
        kind: latency
        name: fast-quote
        threshold_ms: 300
        target_pct: 99.0
        tiers: {gold: 99.5}
      - scenario: checkout.purchase_quote
        kind: latency
        threshold_ms: 1000
        target_pct: 99.9
      - scenario: checkout.place_order
        kind: availability
        tiers: {gold: 99.95, silver: 99.9}
    credits:
      - {below_pct: 99.0, credit_pct: 25}
      - {below_pct: 99.9, credit_pct: 10}
    maintenance:
      - start: 2026-11-14T03:00:00+01:00
        end: "2026-11-14T04:00:00Z"
        scenarios: "checkout.*"
        reason: planned database upgrade
      - start: 2026-11-15 01:00:00
        end: 2026-11-15T01:30:00
"""


def test_a_good_file_gives_every_scenario_and_its_objectives(tmp_path):
    path = write(tmp_path, GOOD)
    catalog = load_slos(path, TARGETS, TIERS)

    assert catalog.source == path
    assert len(catalog.objectives) == len(TARGETS) + 2
    quote = [o for o in catalog.objectives if o.scenario_id == "checkout.purchase_quote"]
    assert quote == [
        Objective("checkout.purchase_quote", "availability", "availability", 99.9),
        Objective("checkout.purchase_quote", "fast-quote", "latency", 99.0, 300.0,
                  (("gold", 99.5),), line=2),
        Objective("checkout.purchase_quote", "latency-1000ms", "latency", 99.9, 1000.0,
                  line=8),
    ]
    assert quote[1].subject == "checkout.purchase_quote/fast-quote"
    assert quote[1].target_for("gold") == 99.5 and quote[1].target_for("bronze") == 99.0
    order = next(o for o in catalog.objectives if o.scenario_id == "checkout.place_order")
    assert order.target_pct == 99.9 and order.line == 12
    assert order.tier_targets == (("gold", 99.95), ("silver", 99.9))
    assert catalog.credits == (CreditStep(99.9, 10.0), CreditStep(99.0, 25.0))
    assert catalog.credit_pct(99.5, 99.9) == 10.0 and catalog.credit_pct(98.0, 99.9) == 25.0
    assert catalog.maintenance == (
        MaintenanceWindow(datetime(2026, 11, 14, 2), datetime(2026, 11, 14, 4), "checkout.*",
                          "*", "planned database upgrade", line=19),
        MaintenanceWindow(datetime(2026, 11, 15, 1), datetime(2026, 11, 15, 1, 30), line=23),
    )
    keys = [(o.scenario_id, o.kind != "availability", o.name) for o in catalog.objectives]
    assert keys == sorted(keys)


def test_without_a_file_every_scenario_has_its_availability_objective_alone():
    catalog = load_slos(None, TARGETS, TIERS)

    assert [(o.scenario_id, o.kind, o.target_pct) for o in catalog.objectives] == [
        (s, "availability", TARGETS[s]) for s in sorted(TARGETS)
    ]
    assert all(o.line is None and o.tier_targets == () for o in catalog.objectives)
    assert catalog.credits == DEFAULT_CREDITS and catalog.maintenance == ()
    assert catalog.source is None


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "objectives:\nmaintenance:\n"])
def test_an_empty_file_gives_the_defaults(tmp_path, text):
    catalog = load_slos(write(tmp_path, text), TARGETS, TIERS)
    assert catalog.objectives == load_slos(None, TARGETS, TIERS).objectives
    assert catalog.credits == DEFAULT_CREDITS


def test_the_deploy_example_is_valid_for_the_reference_csvs():
    catalog = load_slos(EXAMPLE, TARGETS, TIERS)
    assert sum(o.kind == "latency" for o in catalog.objectives) == 3
    assert catalog.maintenance and catalog.credits


LATENCY = ("objectives:\n  - scenario: checkout.purchase_quote\n    kind: latency\n"
           "    threshold_ms: {threshold}\n    target_pct: {target}\n")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("objectives: [\n", 2, "not valid YAML"),
        ("objectives:\n  - scenario: a\n   kind: b\n", 3, "not valid YAML"),
        ("- scenario: checkout.place_order\n", 1, "the top level must be a mapping"),
        ("objectives: []\nobjective: []\n", 2, "unknown key 'objective' in the top level"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    colour: red\n", 4, "unknown key 'colour' in an objective"),
        ("objectives:\n  - scenario: checkout.nope\n    kind: availability\n", 2,
         "unknown scenario 'checkout.nope'"),
        ("objectives:\n  - scenario: Checkout.Place_Order\n    kind: availability\n", 2,
         "unknown scenario"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: speed\n", 3,
         "unknown kind 'speed'"),
        ("objectives:\n  - kind: availability\n", 2, "lacks 'scenario'"),
        (LATENCY.format(threshold=300, target=100.5), 5, "target_pct 100.5 is outside 0 < t"),
        (LATENCY.format(threshold=300, target=0), 5, "target_pct 0 is outside"),
        (LATENCY.format(threshold=300, target=".nan"), 5, "finite number"),
        (LATENCY.format(threshold=0, target=99), 4, "threshold_ms must be positive, not 0"),
        (LATENCY.format(threshold=-5, target=99), 4, "threshold_ms must be positive"),
        (LATENCY.format(threshold="yes", target=99), 4, "threshold_ms must be a number"),
        (LATENCY.format(threshold=300, target="true"), 5, "target_pct must be a number, not true"),
        (LATENCY.format(threshold=300, target="'99'"), 5, "target_pct must be a number, not '99'"),
        ("objectives:\n  - scenario: checkout.purchase_quote\n    kind: latency\n"
         "    target_pct: 99\n", 2, "a latency objective needs threshold_ms"),
        ("objectives:\n  - scenario: checkout.purchase_quote\n    kind: latency\n"
         "    threshold_ms: 300\n", 2, "a latency objective needs target_pct"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    threshold_ms: 300\n", 4, "threshold_ms belongs to latency objectives"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    target_pct: 99.5\n", 4,
         "its target is slo_target_pct in scenarios.csv (99.9 for checkout.place_order)"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    tiers: {diamond: 99.99}\n", 4, "unknown tier 'diamond'"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    tiers:\n      gold: 120\n", 5, "the gold target 120 is outside"),
        ("objectives:\n  - scenario: checkout.place_order\n    kind: availability\n"
         "    name: a name\n", 4, "name 'a name' may hold only"),
        (LATENCY.format(threshold=300, target=99) + "  - scenario: checkout.purchase_quote\n"
         "    kind: latency\n    threshold_ms: 300.0\n    target_pct: 95\n    name: other\n",
         6, "duplicate objective: checkout.purchase_quote already has an objective latency at "
            "300 ms (line 2)"),
        (LATENCY.format(threshold=300, target=99) + "  - scenario: checkout.purchase_quote\n"
         "    kind: latency\n    threshold_ms: 500\n    target_pct: 95\n"
         "    name: latency-300ms\n", 6, "objective named 'latency-300ms' (line 2)"),
        ("objectives:\n  - {scenario: checkout.place_order, kind: availability}\n"
         "  - {scenario: checkout.place_order, kind: availability, tiers: {gold: 99.99}}\n",
         3, "duplicate objective"),
        ("credits:\n  - {below_pct: 99.9, credit_pct: 10}\n  - {below_pct: 99.9, credit_pct: 5}\n",
         3, "duplicate credit step below 99.9 % (line 2)"),
        ("credits:\n  - {below_pct: 99.9, credit_pct: 0}\n", 2, "credit_pct 0 is outside"),
        ("credits:\n  - {below_pct: 101, credit_pct: 10}\n", 2, "below_pct 101 is outside"),
        ("credits:\n  - {below_pct: 99.9}\n", 2, "lacks 'credit_pct'"),
        ("maintenance:\n  - start: 2026-11-14T04:00:00Z\n    end: 2026-11-14T04:00:00Z\n", 3,
         "end 2026-11-14T04:00:00 is not after start"),
        ("maintenance:\n  - start: next tuesday\n    end: 2026-11-14T04:00:00Z\n", 2,
         "start 'next tuesday' is not an ISO-8601 timestamp"),
        ("maintenance:\n  - start: 2026-11-14\n    end: 2026-11-15T00:00:00Z\n", 2,
         "needs a time of day"),
        ("maintenance:\n  - start: 2026-11-14T02:00:00Z\n    end: 2026-11-14T04:00:00Z\n"
         "    scenarios: 'chekout.*'\n", 4,
         "scenarios 'chekout.*' matches no scenario in scenarios.csv"),
        ("maintenance:\n  - end: 2026-11-14T04:00:00Z\n", 2, "lacks 'start'"),
    ],
)
def test_each_mistake_is_named_by_its_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    errors = errors_of(path)
    assert any(e.startswith(f"{path}:{line}: ") and fragment in e for e in errors), errors


def test_every_error_is_reported_at_once_in_file_order(tmp_path):
    path = write(tmp_path, """\
        objectives:
          - scenario: checkout.nope
            kind: availability
          - scenario: checkout.purchase_quote
            kind: latency
            threshold_ms: 0
            target_pct: 150
        extra: 1
    """)
    errors = errors_of(path)
    assert [e.split(": ")[0] for e in errors] == [f"{path}:{n}" for n in (2, 6, 7, 8)]


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path):
    assert errors_of(tmp_path / "absent.yaml") == [
        f"{tmp_path / 'absent.yaml'}: cannot read the objectives file: No such file or directory"
    ]


def test_settings_find_slos_beside_the_reference_csvs_only_when_present(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    settings = Settings.from_env({"TELEMETRY_REFERENCE_DIR": str(reference)})
    assert settings.slos_file is None
    (reference / "slos.yaml").write_text("objectives: []\n")
    assert settings.slos_file == reference / "slos.yaml"

    named = Settings.from_env({"TELEMETRY_REFERENCE_DIR": str(reference),
                               "TELEMETRY_SLOS": str(tmp_path / "elsewhere.yaml")})
    # Named explicitly, a missing file is an error to report rather than a silent default.
    assert named.slos_file == tmp_path / "elsewhere.yaml"
    assert errors_of(named.slos_file)[0].endswith("No such file or directory")


def export(catalog, budget_window: str = "28d") -> list[dict]:
    return openslo_documents(
        catalog,
        {s: ScenarioInfo(row["scenario_name"], row["service"]) for s, row in SCENARIOS.items()},
        budget_window=budget_window, latency_growth=1.02, zero_bucket=-1_000_000,
    )


def test_the_export_is_valid_openslo_v1_with_one_slo_per_objective():
    catalog = load_slos(EXAMPLE, TARGETS, TIERS)
    documents = export(catalog)

    assert schema_errors(documents) == []
    services = [d for d in documents if d["kind"] == "Service"]
    slos = [d for d in documents if d["kind"] == "SLO"]
    assert {d["metadata"]["name"] for d in services} == {r["service"] for r in SCENARIOS.values()}
    assert len(slos) == len(catalog.objectives)
    names = [d["metadata"]["name"] for d in slos]
    assert len(set(names)) == len(names)
    assert all(len(n) <= 63 and n == dns_label(n) for n in names)
    quote = next(d for d in slos if d["metadata"]["name"] == "checkout-purchase-quote-fast-quote")
    spec = quote["spec"]
    assert spec["service"] == "checkout"
    assert spec["budgetingMethod"] == "Occurrences"
    assert spec["timeWindow"] == [{"duration": "28d", "isRolling": True}]
    assert spec["objectives"][0]["target"] == 0.99
    good = spec["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"]
    assert good["type"] == "DuckDB" and "aggregate.minute_latency" in good["spec"]["query"]
    assert good["spec"]["parameters"]["threshold_ms"] == 300.0
    assert quote["metadata"]["annotations"]["slo.telemetry/tier-target.gold"] == "99.5"
    order = next(d for d in slos if d["metadata"]["name"] == "checkout-place-order-availability")
    assert order["spec"]["objectives"][0]["target"] == 0.999
    total = order["spec"]["indicator"]["spec"]["ratioMetric"]["total"]["metricSource"]
    assert "aggregate.minute_aggregate" in total["spec"]["query"]


def test_the_schema_rejects_what_openslo_forbids():
    documents = export(load_slos(None, TARGETS, TIERS), budget_window="28 days")
    assert schema_errors(documents[-1:]), "a bad duration must not validate"
    broken = yaml.safe_load(yaml.safe_dump(documents[-1]))
    broken["spec"]["objectives"][0]["target"] = 99.9
    assert schema_errors([broken])


def test_long_or_clashing_ids_still_give_distinct_dns_labels():
    long_id = "x" * 80
    assert len(dns_label(long_id)) == 63 and dns_label(long_id) != dns_label("x" * 81)
    targets = {"a.b": 99.0, "a_b": 99.0, long_id: 99.0}
    catalog = load_slos(None, targets, TIERS)
    documents = openslo_documents(
        catalog, {s: ScenarioInfo(s, "svc") for s in targets}, budget_window="1d",
        latency_growth=1.02, zero_bucket=-1_000_000,
    )
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "SLO"]
    assert len(set(names)) == 3
    assert schema_errors(documents) == []


def test_a_target_of_100_pct_cannot_be_exported(tmp_path):
    catalog = load_slos(None, {"checkout.place_order": 100.0}, TIERS)
    with pytest.raises(ExportError, match="100 % cannot be stated in OpenSLO"):
        openslo_documents(catalog, {"checkout.place_order": ScenarioInfo("Place order", "c")},
                          budget_window="28d", latency_growth=1.02, zero_bucket=-1)
