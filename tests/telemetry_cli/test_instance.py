"""Commands started at once on a brand-new DAGSTER_HOME all open it."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

# Twelve interpreters that import Dagster, four at a time.
pytestmark = pytest.mark.minutes(2)

OPEN = ("from telemetry_cli.launcher import instance_for_cli; "
        "instance_for_cli().get_runs(limit=1)")


def test_four_commands_at_once_on_a_new_dagster_home_all_open_it(tmp_path):
    for trial in range(3):
        home = tmp_path / f"home-{trial}"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        processes = [subprocess.Popen([sys.executable, "-c", OPEN], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(4)]
        outputs = [process.communicate(timeout=120)[0] for process in processes]
        assert [process.returncode for process in processes] == [0] * 4, outputs
