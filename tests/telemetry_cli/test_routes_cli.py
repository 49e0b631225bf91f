"""`telemetry routes check` (what CI runs on a routes file) and `telemetry silence`."""

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from telemetry_cli.main import main
from telemetry_core.silences import SilenceStore
from tests.helpers import REPO

EXAMPLE = REPO / "deploy" / "routes.example.yaml"
SECRETS = ("PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK_URL", "CONTOSO_HOOK_SECRET", "XMPP_PASSWORD")


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "reference"
    folder.mkdir()
    for csv_file in (REPO / "data" / "reference").glob("*.csv"):
        shutil.copy(csv_file, folder / csv_file.name)
    monkeypatch.setenv("TELEMETRY_REFERENCE_DIR", str(folder))
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TELEMETRY_ROUTES", raising=False)
    for name in SECRETS:
        monkeypatch.setenv(name, secret(name))
    monkeypatch.setenv("ROUTE_NOT_A_URL", "hooks.slack.com/services/T0/B0/NOT-SHOWN")
    return folder


def secret(name: str) -> str:
    value = f"secret-{name.lower()}"
    return f"https://hooks.example/{value}" if name.endswith("_URL") else value


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_example_passes_and_every_route_is_listed_without_its_secrets(reference):
    result = run("routes", "check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "checkout-oncall: service checkout, severity page -> pagerduty " \
           "https://events.pagerduty.com/v2/enqueue; alertmanager http://127.0.0.1:9093" \
        in result.stdout
    assert "contoso-own: partner-scoped, partner contoso -> webhook " in result.stdout
    assert "events checkout-to-kafka: data.baseData.operationName=Quote* -> kafka " \
           "127.0.0.1:9092/checkout-events" in result.stdout
    assert "presence: every change -> xmpp mood@example.org" in result.stdout
    assert "4 route(s), 1 event route(s), valid" in result.stdout
    assert not [name for name in SECRETS if secret(name) in result.output]


BAD = {
    "unknown sink": ("routes:\n  - name: a\n    sinks:\n      - {type: teams, url: x}\n", 4,
                     "unknown sink type 'teams' (one of: slack, pagerduty"),
    "bad glob": ("routes:\n  - name: a\n    match:\n      scenario: 'checkout.[quote'\n"
                 "    sinks:\n      - {type: alertmanager, url: 'http://am:9093'}\n", 4,
                 "scenario 'checkout.[quote' is not a valid glob: an unclosed '['"),
    "glob matching nothing": ("routes:\n  - name: a\n    match: {service: billing}\n"
                              "    sinks:\n      - {type: alertmanager, url: 'http://am'}\n", 3,
                              "service 'billing' matches no service of the reference data"),
    "missing secret variable": ("routes:\n  - name: a\n    sinks:\n      - type: slack\n"
                                "        url_env: NOT_SET_ANYWHERE\n", 5,
                                "the environment variable NOT_SET_ANYWHERE is not set"),
    "secret written in the file": ("routes:\n  - name: a\n    sinks:\n      - type: slack\n"
                                   "        url_env: https://hooks.slack.com/x\n", 5,
                                   "is not an environment variable name"),
    "unknown tier": ("routes:\n  - name: a\n    match: {tier: diamond}\n    sinks:\n"
                     "      - {type: alertmanager, url: 'http://am'}\n", 3,
                     "unknown tier 'diamond'"),
    "not YAML": ("routes: [\n", 2, "not valid YAML"),
    "a date that does not exist": ("routes:\n  - name: a\n    match: {scenario: 2026-02-30}\n"
                                   "    sinks:\n      - {type: alertmanager, url: 'http://am'}\n",
                                   3, "2026-02-30 cannot be read: day is out of range"),
    "a secret variable that holds no URL": (
        "routes:\n  - name: a\n    sinks:\n      - {type: slack, url_env: ROUTE_NOT_A_URL}\n", 4,
        "the environment variable ROUTE_NOT_A_URL does not hold an http:// or https:// URL"),
    "a webhook without its url": ("routes:\n  - name: a\n    sinks:\n      - {type: webhook}\n",
                                  4, "a webhook sink needs one of 'url' and 'url_env'"),
    "event route with two destinations": (
        "events:\n  - name: e\n    kafka: {bootstrap: 'h:1', topic: t}\n"
        "    http: {url: 'http://x'}\n", 2, "exactly one of 'kafka' and 'http'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_fails_with_its_line_and_no_traceback(reference, tmp_path, case):
    text, line, reason = BAD[case]
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    result = run("routes", "check", str(path))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{path}:{line}: " in result.stderr and reason in result.stderr, result.stderr
    assert "NOT-SHOWN" not in result.output


def test_silence_records_a_window_and_lists_it(reference, tmp_path):
    result = run("silence", "--match", "scenario=checkout.*", "--match", "partner=contoso",
                 "--start", "2026-11-20T10:00:00Z", "--until", "90m", "--reason", "db upgrade")
    assert result.exit_code == 0, result.output
    (made,) = SilenceStore(tmp_path / "data" / "lake").around(
        datetime(2026, 11, 20), datetime(2026, 11, 21))
    assert (made.scenario, made.partner, made.starts_at, made.ends_at) == (
        "checkout.*", "contoso", datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11, 30))
    for bad, reason in ((["--match", "team=x"], "unknown key 'team'"),
                        (["--match", "scenario=[x"], "not a valid glob"),
                        (["--match", "scenario=x", "--until", "45d"], "at most 30 days")):
        args = ["silence", *bad] + ([] if "--until" in bad else ["--until", "1h"])
        failed = run(*args)
        assert failed.exit_code == 2 and reason in failed.output, failed.output
