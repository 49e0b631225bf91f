"""The client installs on its own: in a fresh virtualenv of the oldest Python available (3.9 or
later) and of 3.11, `pip install ./telemetry_client` adds nothing but the client, and five lines
send an event the real receiver accepts."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.telemetry_ingest.servers import TOKEN, Receiver, landed_lines

CLIENT = REPO / "telemetry_client"
DISTRIBUTION = "telemetry-availability-client"


def runs(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    except OSError:
        return None
    return tuple(map(int, out.stdout.split())) if out.returncode == 0 else None  # type: ignore[return-value]


def interpreters() -> dict[tuple[int, int], str]:
    """Every Python 3.9+ on this machine that runs, by version (pyenv's too, if any)."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(9, 14)]
    candidates += map(str, sorted(Path.home().glob(".pyenv/versions/3.*/bin/python3")))
    found: dict[tuple[int, int], str] = {}
    for python in filter(None, candidates):
        version = runs(python)
        if version and version >= (3, 9):
            found.setdefault(version, python)
    return found


def base_python() -> str:
    """The interpreter this venv was made from: a venv's own python would nest venvs."""
    return str(Path(sys._base_executable).resolve())  # type: ignore[attr-defined]


def installed(python: Path) -> set[str]:
    listing = subprocess.run([python, "-m", "pip", "list", "--format=json"], check=True,
                             capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    return {package["name"].lower() for package in json.loads(listing)}


OLDEST = min(interpreters(), default=None)


@pytest.mark.parametrize("python", [
    pytest.param("oldest", id=f"python{OLDEST[0]}.{OLDEST[1]}" if OLDEST else "oldest"),
    pytest.param("3.11", id="python3.11"),
])  # fmt: skip
def test_installs_alone_and_sends_events(python: str, tmp_path: Path) -> None:
    interpreter = interpreters()[OLDEST] if python == "oldest" else base_python()
    assert runs(interpreter) >= (3, 9)
    venv = tmp_path / "venv"
    subprocess.run([interpreter, "-m", "venv", venv], check=True, timeout=120)
    venv_python = venv / "bin" / "python"
    before = installed(venv_python)
    # From a copy: a build writes egg-info beside the sources, and tests write only in tmp_path.
    source = shutil.copytree(CLIENT, tmp_path / "telemetry_client",
                             ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    install = subprocess.run([venv_python, "-m", "pip", "install", "--quiet", source],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert installed(venv_python) - before == {DISTRIBUTION}

    receiver = Receiver(tmp_path / "landing", tmp_path / "receiver.log").start()
    try:
        script = (
            "from telemetry_client import TelemetryClient\n"
            f"client = TelemetryClient({receiver.url!r}, {TOKEN!r}, environment='prod')\n"
            "with client.correlation(scenario='checkout.quote', partner='contoso'):\n"
            "    with client.request('GetQuote', request_type='GET') as request:\n"
            "        request.http_status = 200\n"
        )
        sent = subprocess.run([venv_python, "-I", "-c", script], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    finally:
        receiver.stop()
    (event,) = map(json.loads, landed_lines(receiver.landing_dir))
    assert event["data"]["cC"] == "ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=contoso"
    assert event["data"]["baseData"]["operationName"] == "GetQuote"
    assert event["data"]["baseData"]["requestStatus"] == 3


def test_the_client_imports_only_the_standard_library() -> None:
    outside = set()
    for path in (CLIENT / "src" / "telemetry_client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            outside |= {name.split(".")[0] for name in names} - sys.stdlib_module_names
    assert outside == {"telemetry_client"}


def test_the_platform_depends_on_the_client_at_its_version() -> None:
    import tomllib

    import telemetry_client

    platform = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f"{DISTRIBUTION}=={telemetry_client.__version__}" in platform["project"]["dependencies"]
    packaged = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert packaged["dependencies"] == []
    assert packaged["requires-python"] == ">=3.9"
