"""Readers beside runs that replace the partition files they read: every query answers."""

import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from telemetry_assets.tables import PUBLISHED_TABLES
from telemetry_cli.main import main
from tests.events import wire_event
from tests.helpers import DAY, write_landing

pytestmark = pytest.mark.minutes(2)

DAY_KEY = "2026-11-20"
HOURS = [f"{DAY_KEY}-{hour:02d}:00" for hour in range(24)]
QUERIES = 5_000
REWRITE = ("from tests.platform import rewrite_published_until; import sys; "
           "rewrite_published_until(sys.argv[1], sys.argv[2])")


def test_five_thousand_reader_queries_beside_reruns_all_answer(platform, tmp_path):
    for hour in (3, 10, 17):
        write_landing(platform.settings.landing_dir, DAY.replace(hour=hour), "a",
                      [wire_event(f"h{hour}-{i}", time=f"2026-11-20T{hour:02d}:{i % 60:02d}:00Z",
                                  status=i % 9) for i in range(300)])
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days(DAY_KEY)
    stop_file = tmp_path / "stop"
    # Another process replaces the day's published files over and over, as re-runs do.
    rewriter = subprocess.Popen([sys.executable, "-c", REWRITE, DAY_KEY, str(stop_file)])
    answered, failures = 0, []
    tables = [table.qualified_name for table in PUBLISHED_TABLES]

    def ten_queries(con) -> list[int]:
        # A visit answers several queries, as a dashboard page does.
        # Sums read the data pages: a count alone is answered from the footer.
        return [con.execute(f"select sum(total_requests) from {tables[n % len(tables)]}")
                .fetchone()[0] for n in range(10)]

    try:
        started = time.monotonic()
        while answered + 10 * len(failures) < QUERIES:
            try:
                reading = platform.lake.read(ten_queries)
                # A file replaced mid-read is read again, never taken for a damaged one.
                assert reading.damage == (), reading.damage
                counts = reading.value
                assert min(counts) > 0
                answered += len(counts)
            except Exception as error:  # every failure is counted, whatever its kind
                failures.append(repr(error)[:200])
        elapsed = time.monotonic() - started
    finally:
        stop_file.touch()
        rewriter.wait(timeout=120)
    rewrites = int(stop_file.read_text() or 0)
    print(f"reader queries: {answered} answered, {len(failures)} failed, in {elapsed:.1f} s, "
          f"beside {rewrites} file replacements")
    assert failures == [], failures[:5]
    assert answered == QUERIES
    assert rewriter.returncode == 0
    assert rewrites >= 100  # the reader really was beside rewrites


def test_readers_follow_a_moved_lake_and_create_nothing(platform, tmp_path):
    write_landing(platform.settings.landing_dir, DAY.replace(hour=10), "a",
                  [wire_event(f"e{i}", time=f"2026-11-20T10:{i:02d}:00Z") for i in range(12)])
    platform.run_reference()
    platform.run_hours(*HOURS)
    platform.run_days(DAY_KEY)
    old = platform.settings.data_dir
    moved = tmp_path / "moved-data"
    shutil.copytree(old, moved)
    # What is left at the old place must not be what the moved warehouse reads.
    shutil.rmtree(old / "lake" / "published")
    result = CliRunner().invoke(main, ["availability", "--date", DAY_KEY],
                                env={"TELEMETRY_DATA_DIR": str(moved)})
    assert result.exit_code == 0, result.output
    assert "checkout.quote" in result.output and "12" in result.output

    nowhere = tmp_path / "never-created"
    result = CliRunner().invoke(main, ["availability", "--date", DAY_KEY],
                                env={"TELEMETRY_DATA_DIR": str(nowhere)})
    assert result.exit_code == 1 and "run the pipeline first" in result.output
    assert not nowhere.exists()
