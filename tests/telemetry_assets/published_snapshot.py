"""What the pipeline publishes for one generated day, as a digest: what a speed-up must leave
unchanged, however it runs (one range run, a run per partition, a re-run).

The day: the test reference data, 2026-11-20, 600 events an hour in 2 files, seed 29 (outages,
duplicates, late events, malformed lines and all). After a deliberate change of the figures,
rewrite the snapshot with
`python -m tests.telemetry_assets.published_snapshot \
    > tests/telemetry_assets/published_snapshot.json`;
the diff of that file is the review of the change.
"""

import hashlib
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telemetry_synth import generate_landing

DAY = datetime(2026, 11, 20, tzinfo=UTC)
TABLES = ("published.scenario_daily", "published.scenario_partner_daily",
          "published.scenario_minute", "quarantine.rejected_events", "staging.event_outcomes")


def land_the_day(platform) -> None:  # type: ignore[no-untyped-def]
    generate_landing(platform.settings.landing_dir, platform.settings.reference_dir, DAY,
                     DAY.replace(day=21), events_per_hour=600, seed=29, files_per_hour=2)


def _exact(key: str, value: Any) -> Any:
    if key == "file" and isinstance(value, str):
        # The landing folder's place differs from run to run; the file within it does not.
        return value.split("/landing/", 1)[-1]
    return value.isoformat() if hasattr(value, "isoformat") else value


def digest(platform) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Per table: its rows, a hash of every row's exact columns (all but the floats), and the
    sum of every numeric column. Floats are summed, not hashed: DuckDB sums doubles in
    parallel, in no fixed order, and an average of latencies in thousandths is often a
    decimal tie that the last bit decides; compare the sums with a relative tolerance."""
    found = {}
    for table in TABLES:
        rows = platform.query(f"select * from {table} order by all")
        exact = [{key: _exact(key, value) for key, value in row.items()
                  if not isinstance(value, float)} for row in rows]
        numeric = sorted({key for row in rows for key, value in row.items()
                          if isinstance(value, int | float) and not isinstance(value, bool)})
        found[table] = {
            "rows": len(rows),
            "exact_sha256": hashlib.sha256(
                json.dumps(exact, sort_keys=True).encode()).hexdigest(),
            "sums": {key: float(sum(row[key] for row in rows if row[key] is not None))
                     for key in numeric},
        }
    return found


def build() -> dict[str, Any]:
    from tests.platform import make_platform

    with tempfile.TemporaryDirectory() as root, make_platform(Path(root)) as platform:
        land_the_day(platform)
        platform.run_reference()
        platform.run_hours(*[f"2026-11-20-{hour:02d}:00" for hour in range(24)])
        platform.run_days("2026-11-20")
        return digest(platform)


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
