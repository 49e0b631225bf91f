"""`telemetry annotate` and `telemetry annotations`: recorded, listed, refused with a reason."""

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from telemetry_cli.main import main
from telemetry_core.annotations import AnnotationStore
from tests.helpers import write_reference


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path / "data"))
    for name in ("TELEMETRY_LAKE_DIR", "TELEMETRY_REFERENCE_DIR"):
        monkeypatch.delenv(name, raising=False)
    write_reference(tmp_path / "data" / "reference")
    return tmp_path / "data"


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def stored(data_dir) -> list:
    day = datetime(2026, 11, 20)
    return AnnotationStore(data_dir / "lake").between(day, day + timedelta(days=1))


def test_an_annotation_is_recorded_and_listed(data_dir):
    done = run("annotate", "--text", "checkout v1.2", "--kind", "deploy", "--scope",
               "service:checkout", "--start", "2026-11-20T10:15:00Z", "--end",
               "2026-11-20T10:20:00+00:00", "--link", "https://ci.example/1")
    assert done.exit_code == 0, done.output
    (annotation,) = stored(data_dir)
    assert f"recorded deploy annotation {annotation.annotation_id}" in done.output
    assert annotation.source.startswith("cli:")
    listed = run("annotations", "--date", "2026-11-20")
    assert listed.exit_code == 0
    for shown in ("2026-11-20 10:15:00", "2026-11-20 10:20:00", "service:checkout", "deploy",
                  "checkout v1.2", "https://ci.example/1"):
        assert shown in listed.output
    assert "no annotations on 2026-11-21" in run("annotations", "--date", "2026-11-21").output


@pytest.mark.parametrize(("args", "said"), [
    (("--start", "2026-11-20T10:15:00Z", "--end", "2026-11-20T10:00:00Z"), "before it starts"),
    (("--scope", "cluster:eu-1"), "unknown scope 'cluster:eu-1'"),
    (("--scope", "scenario:nope"), "unknown scenario 'nope'"),
    (("--start", "2026-11-20 10:15 CET"), "is not an ISO-8601 time"),
])
def test_bad_input_is_a_message_and_records_nothing(data_dir, args, said):
    refused = run("annotate", "--text", "x", *args)
    assert refused.exit_code == 2 and said in refused.output, refused.output
    assert "annotation not recorded" in refused.output
    assert stored(data_dir) == []


def test_an_oversize_text_is_refused(data_dir):
    refused = run("annotate", "--text", "x" * 2001, "--start", "2026-11-20T10:00:00Z")
    assert refused.exit_code == 2 and "is 2,001 characters; at most 2,000" in refused.output
    assert stored(data_dir) == []
