"""`telemetry slo check` and `telemetry slo export`: what CI runs on slos.yaml."""

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from telemetry_cli.main import main
from tests.helpers import REPO
from tests.telemetry_core.test_slos import schema_errors

EXAMPLE = REPO / "deploy" / "slos.example.yaml"


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "reference"
    folder.mkdir()
    for csv_file in (REPO / "data" / "reference").glob("*.csv"):
        shutil.copy(csv_file, folder / csv_file.name)
    monkeypatch.setenv("TELEMETRY_REFERENCE_DIR", str(folder))
    monkeypatch.delenv("TELEMETRY_SLOS", raising=False)
    monkeypatch.delenv("TELEMETRY_MOOD_BUDGET_WINDOW", raising=False)
    return folder


def run(*args: str):
    return CliRunner().invoke(main, ["slo", *args])


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_check_passes_on_the_example_and_lists_every_objective(reference):
    result = run("check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "checkout.purchase_quote/fast-quote: latency <= 300 ms 99 %, gold 99.5 %, " \
           "platinum 99.5 % (line 9)" in lines
    assert "checkout.place_order: availability 99.9 % (scenarios.csv)" in lines
    assert len(lines) == 50 + 3


def test_check_reads_slos_yaml_beside_the_reference_csvs_by_default(reference):
    assert run("check").exit_code == 0
    (reference / "slos.yaml").write_text("objectives:\n  - scenario: nope\n    kind: latency\n")
    assert_clean_failure(run("check"), f"{reference / 'slos.yaml'}:2: unknown scenario 'nope'")


BAD = {
    "unknown scenario": ("objectives:\n  - scenario: checkout.purchase_qoute\n"
                         "    kind: availability\n", 2, "unknown scenario"),
    "target outside 0-100": ("objectives:\n  - scenario: checkout.purchase_quote\n"
                             "    kind: latency\n    threshold_ms: 300\n    target_pct: 199\n",
                             5, "outside 0 < t <= 100"),
    "threshold not positive": ("objectives:\n  - scenario: checkout.purchase_quote\n"
                               "    kind: latency\n    threshold_ms: -1\n    target_pct: 99\n",
                               4, "threshold_ms must be positive"),
    "duplicate objective": ("objectives:\n"
                            "  - {scenario: checkout.place_order, kind: availability}\n"
                            "  - {scenario: checkout.place_order, kind: availability}\n",
                            3, "duplicate objective"),
}


@pytest.mark.parametrize("case", BAD)
def test_check_fails_naming_the_line(reference, tmp_path, case):
    text, line, fragment = BAD[case]
    path = tmp_path / "slos.yaml"
    path.write_text(text)
    result = run("check", str(path))
    assert_clean_failure(result, f"{path}:{line}: ", fragment)
    assert result.stdout == ""


def test_check_fails_cleanly_on_a_missing_file(reference, tmp_path):
    assert_clean_failure(run("check", str(tmp_path / "absent.yaml")),
                         "absent.yaml: cannot read the objectives file")


def test_a_named_missing_file_is_not_silently_skipped(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("TELEMETRY_SLOS", str(tmp_path / "absent.yaml"))
    assert_clean_failure(run("check"), "absent.yaml: cannot read")


def test_check_fails_cleanly_on_a_bad_reference_csv(reference):
    (reference / "scenarios.csv").write_text("scenario_id,scenario_name\nx,y\n")
    assert_clean_failure(run("check", str(EXAMPLE)), "scenarios.csv")
    (reference / "scenarios.csv").unlink()
    assert_clean_failure(run("check", str(EXAMPLE)), "scenarios.csv: file not found")


def test_export_writes_openslo_v1_that_validates(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("TELEMETRY_MOOD_BUDGET_WINDOW", "7d")
    out = tmp_path / "openslo.yaml"
    result = run("export", str(EXAMPLE), "--format", "openslo", "--output", str(out))
    assert result.exit_code == 0, result.output

    documents = list(yaml.safe_load_all(out.read_text()))
    assert schema_errors(documents) == []
    slos = [d for d in documents if d["kind"] == "SLO"]
    assert len(slos) == 53
    assert {d["spec"]["timeWindow"][0]["duration"] for d in slos} == {"7d"}


def test_export_to_stdout_by_default(reference):
    result = run("export")
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert schema_errors(documents) == []
    assert sum(d["kind"] == "SLO" for d in documents) == 50


def test_export_refuses_a_bad_file_like_check(reference, tmp_path):
    path = tmp_path / "slos.yaml"
    path.write_text(BAD["unknown scenario"][0])
    result = run("export", str(path))
    assert_clean_failure(result, f"{path}:2: unknown scenario")
    assert result.stdout == ""
