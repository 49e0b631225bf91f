"""The Dagster UI on loopback, as `dg dev` and `dagster dev -w workspace.yaml` serve it: the
asset graph rendered in headless Chromium, and every asset, check, schedule and sensor of `defs`
served through GraphQL without definition warnings."""

import html
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from telemetry_assets.checks.audits import AUDITS
from telemetry_assets.definitions import defs
from tests.telemetry_assets.dagster_ui import graphql

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1600,1800"]
# Asset names as the graph draws them; long names are shortened in the middle with an ellipsis.
NODE_LABEL = re.compile(r'class="AssetNode_assetName__[^"]*">([^<]+)</div>')

REPOSITORY_QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name description cronSchedule }
    sensors { name description }
} } } }"""
ASSETS_QUERY = """{ assetNodes { assetKey { path } groupName description
    assetChecksOrError { ... on AssetChecks { checks { name description } } } } }"""


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it")
    return path


def browse(url: str, profile: Path, *output: str, budget_ms: int) -> str:
    """Load the page in a fresh headless Chromium until the page has been idle for the budget."""
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         f"--virtual-time-budget={budget_ms}", *output, url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def drawn(label: str, names: set[str]) -> str | None:
    """The asset a graph label stands for, shortened or not."""
    if label in names:
        return label
    head, _, tail = label.partition("…")
    matches = [name for name in names if tail and name.startswith(head) and name.endswith(tail)]
    return matches[0] if len(matches) == 1 else None


def test_asset_graph_renders_every_asset_in_chromium(dg_dev, tmp_path):
    port, _ = dg_dev
    nodes = list(defs.resolve_asset_graph().asset_nodes)
    names = {node.key.to_user_string() for node in nodes}
    # The lineage page draws collapsed stages unless told which groups to open.
    groups = ",".join(f"global@global:{group}" for group in sorted({n.group_name for n in nodes}))
    url = f"http://127.0.0.1:{port}/asset-groups?expanded={quote(groups)}"

    labels: list[str] = []
    for budget_ms in (15_000, 45_000):  # a slower machine gets a second, longer look
        dom = browse(url, tmp_path / "dom-profile", "--dump-dom", budget_ms=budget_ms)
        labels = [html.unescape(label) for label in NODE_LABEL.findall(dom)]
        if len(labels) >= len(names):
            break
    assert sorted(drawn(label, names) or label for label in labels) == sorted(names)
    assert "Join the Dagster community" not in dom  # no dialog over the graph

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "asset_graph.png"
    screenshot.unlink(missing_ok=True)
    browse(url, tmp_path / "shot-profile", f"--screenshot={screenshot}", budget_ms=budget_ms)
    # A blank page or a spinner compresses to a few kilobytes; a drawn graph does not.
    assert screenshot.stat().st_size > 50_000


def test_ui_serves_every_asset_check_schedule_and_sensor(dg_dev):
    port, _ = dg_dev
    served_assets = {"/".join(node["assetKey"]["path"]): node
                     for node in graphql(port, ASSETS_QUERY)["assetNodes"]}
    graph = defs.resolve_asset_graph()
    assert {name: (node["groupName"], bool(node["description"]))
            for name, node in served_assets.items()} == {
        node.key.to_user_string(): (node.group_name, True) for node in graph.asset_nodes}

    served_checks = {(name, check["name"]): check["description"]
                     for name, node in served_assets.items()
                     for check in node["assetChecksOrError"].get("checks", [])}
    assert set(served_checks) == {(key.asset_key.to_user_string(), key.name)
                                  for key in graph.asset_check_keys}
    assert all(served_checks.values())

    (repository,) = graphql(port, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"]
    assert {s["name"] for s in repository["schedules"]} == {s.name for s in defs.schedules}
    sensors = {s["name"]: s for s in repository["sensors"]}
    ours = {s.name for s in defs.sensors}
    # Dagster adds its own sensor for assets that carry an automation condition.
    assert set(sensors) - ours <= {"default_automation_condition_sensor"}
    assert ours <= set(sensors)
    assert all(item["description"] for item in repository["schedules"])
    assert all(sensors[name]["description"] for name in ours)


@pytest.mark.parametrize("server", ["dg_dev", "dagster_dev"])
def test_the_ui_serves_every_asset_and_check_without_definition_warnings(server, request):
    port, log = request.getfixturevalue(server)
    data = graphql(port, "{ assetNodes { assetKey { path } groupName description } }")
    served = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    expected = {node.key.to_user_string() for node in defs.resolve_asset_graph().asset_nodes}
    assert set(served) == expected
    assert all(node["description"] for node in served.values())
    checks_query = """{ assetNodes { assetKey { path }
        assetChecksOrError { ... on AssetChecks { checks { name description blocking } } } } }"""
    served_checks = {
        ("/".join(node["assetKey"]["path"]), check["name"]): check
        for node in graphql(port, checks_query)["assetNodes"]
        for check in node["assetChecksOrError"].get("checks", [])
    }
    expected_checks = {(key.asset_key.to_user_string(), key.name)
                       for key in defs.resolve_asset_graph().asset_check_keys}
    assert set(served_checks) == expected_checks
    for audit in AUDITS:
        served = served_checks[(audit.table.asset, audit.rule)]
        assert served["blocking"] is audit.blocking
        assert served["description"].endswith(
            "Severity: ERROR, blocking." if audit.blocking else "Severity: WARN.")
    text = log.read_text()
    warnings = [line for line in text.splitlines()
                if "Warning" in line and "SupersessionWarning" not in line]
    assert warnings == [], "\n".join(warnings)
    assert "Traceback" not in text
