"""The code location: it loads, every asset is described, `dg` checks and lists it, and both
`dg dev` and `dagster dev -w workspace.yaml` serve it cleanly (test_ui.py)."""

import json
import subprocess
import sys
from pathlib import Path

from telemetry_assets.checks.asset_checks import audit_checks
from telemetry_assets.checks.audits import AUDITS
from telemetry_assets.definitions import defs
from telemetry_core.sql import SQL_DIR
from tests.telemetry_assets.dagster_ui import REPO, venv_env


def asset_nodes():
    return list(defs.resolve_asset_graph().asset_nodes)


def test_every_asset_has_a_description_and_a_group():
    nodes = asset_nodes()
    assert len(nodes) >= 16
    for node in nodes:
        assert node.description, node.key
        assert node.group_name not in (None, "default"), node.key


def test_every_sql_file_has_its_asset_in_the_group_named_like_its_folder():
    groups = {node.key.to_user_string(): node.group_name for node in asset_nodes()}
    sql_files = sorted(path for path in SQL_DIR.glob("*/*.sql") if path.parent.name != "checks")
    assert len(sql_files) >= 12
    for path in sql_files:
        # <asset>.sql, or <asset>.spark.sql: the same stage in the Spark engine's own SQL.
        asset, *engine = path.name.removesuffix(".sql").split(".")
        assert engine in ([], ["spark"]), path
        assert groups.get(asset) == path.parent.name, path


def test_every_audit_file_is_a_check_on_its_asset():
    checks = {(key.asset_key.to_user_string(), key.name)
              for key in defs.resolve_asset_graph().asset_check_keys}
    audit_files = {path.stem for path in (SQL_DIR / "checks").glob("*.sql")}
    assert audit_files == {audit.sql_file for audit in AUDITS}
    for audit in AUDITS:
        assert (audit.table.asset, audit.rule) in checks, audit.name
        # A table's own audit is named after it; a generic one after its rule alone.
        assert audit.sql_file == (audit.rule if audit.generic else f"{audit.table.name}__"
                                  f"{audit.rule}")
    generic = [audit for audit in AUDITS if audit.generic]
    assert len({audit.sql_file for audit in generic}) < len(generic)  # shared, not copied


def test_checks_are_described_and_block_exactly_when_their_audit_is_structural():
    for audit, check in zip(AUDITS, audit_checks, strict=True):
        (spec,) = check.check_specs
        assert (spec.asset_key.to_user_string(), spec.name) == (audit.table.asset, audit.rule)
        assert spec.description
        assert spec.blocking is audit.blocking


def test_partitioned_assets_backfill_a_range_in_one_run():
    for node in asset_nodes():
        if node.partitions_def is not None and node.is_executable:
            assert node.backfill_policy is not None, node.key
            assert node.backfill_policy.max_partitions_per_run is None, node.key


def test_jobs_cover_every_asset_once():
    selected = []
    for name in ("reference_data", "hourly_pipeline", "daily_pipeline", "rebuild_dashboard",
                 "issue_sla_statements"):
        job = defs.resolve_job_def(name)
        selected += [key.to_user_string() for key in job.asset_layer.executable_asset_keys]
    # open_hour and route_deliveries are reported by the service_mood sensor, not run.
    assert sorted(selected) == sorted(node.key.to_user_string() for node in asset_nodes()
                                      if node.is_executable)
    assert sorted(n.key.to_user_string() for n in asset_nodes() if not n.is_executable) == [
        "open_hour", "route_deliveries"]


def dg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("dg")), *args], cwd=REPO,
                          env=venv_env(), capture_output=True, text=True, timeout=180)


def test_dg_checks_and_lists_every_definition():
    checked = dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert {a["asset_key"] for a in found["assets"]} == {
        node.key.to_user_string() for node in asset_nodes()}
    assert len(found["asset_checks"]) == len(list(defs.resolve_asset_graph().asset_check_keys))
    assert {s["name"] for s in found["sensors"]} >= {"late_landing_files", "service_mood",
                                                     "run_failure_webhook"}
    assert {r["name"] for r in found["resources"]} == {"store", "quality", "mood", "automation"}
