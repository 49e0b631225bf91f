"""Why a published figure changed: each re-publication of a day, per changed scenario, with the
old and new figures, the hours re-run, the landing files that were new or changed (and their
event counts) and the reference values that changed.

At every publication of a day, `scenario_daily` keeps what the day was computed from in
`context.day_inputs`: each landing file the day's raw hours read (valid and rejected lines) and
the identity of each hour's minute-aggregate file. The next publication compares the day's
inputs now with those, and its published rows with the previous ones; the scenarios whose
figures moved are recorded in `context.revisions` (one row per scenario and revision, the
publishing run's id as the revision's), shown in the run's metadata, on the dashboard and by
`telemetry explain`.
"""

import json
import logging
import re
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from dagster import TimeWindow

from telemetry_assets.lake import Lake, file_identity
from telemetry_assets.partitions import Grain, by_day, partition_starts
from telemetry_assets.tables import (
    DAY_INPUTS,
    MINUTE_AGGREGATE,
    RAW_EVENTS,
    REJECTED_EVENTS,
    REVISION_BASES,
    REVISIONS,
)
from telemetry_core.annotations import Annotation, note, platform_id
from telemetry_core.recorded import RecordedTable
from telemetry_core.sql import compute_connection, utc_naive

INPUT_COLUMNS = ["kind", "hour", "name", "events", "rejected", "identity"]
REVISION_SCHEMA = pa.schema([
    ("date", pa.date32()),
    ("scenario_id", pa.string()),
    ("revision_id", pa.string()),
    ("revised_at", pa.timestamp("us")),
    ("scenario_name_before", pa.string()),
    ("scenario_name", pa.string()),
    ("slo_target_pct_before", pa.float64()),
    ("slo_target_pct", pa.float64()),
    ("total_requests_before", pa.int64()),
    ("total_requests", pa.int64()),
    ("failed_requests_before", pa.int64()),
    ("failed_requests", pa.int64()),
    ("availability_pct_before", pa.float64()),
    ("availability_pct", pa.float64()),
    # Of the day, the same for each scenario of a revision: comma-separated HH:00 hours, and
    # JSON [{"file", "hour", "change", "events_before", "events", "rejected_before", "rejected"}].
    ("hours_rerun", pa.string()),
    ("files", pa.string()),
    ("reason", pa.string()),
])
log = logging.getLogger(__name__)
_HOUR_IN_PATH = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})")


def revisions_table(lake_dir: Path) -> RecordedTable:
    return RecordedTable(lake_dir, REVISIONS.schema, REVISIONS.name, REVISION_SCHEMA,
                         key=lambda row: (row["date"], row["scenario_id"], row["revision_id"]),
                         day_of=lambda row: row["date"],
                         order=lambda row: (row["revised_at"], row["scenario_id"]))


def _hour_of(path: str) -> str | None:
    found = _HOUR_IN_PATH.search(path)
    return f"{found.group(1)}T{found.group(2)}:00" if found else None


def day_inputs(lake: Lake, day: TimeWindow) -> pd.DataFrame:
    """What the day's figures are computed from now: per landing file its valid and rejected
    lines, per hour its minute-aggregate file's identity."""
    rows: list[dict[str, Any]] = []
    with closing(compute_connection()) as con:
        counts: dict[str, dict[str, int]] = {}
        if lake.register(con, RAW_EVENTS, day, existing_only=True):
            for name, events in con.sql("select source_file, count(*) from raw_events "
                                        "group by all").fetchall():
                counts.setdefault(name, {"events": 0, "rejected": 0})["events"] = events
        if lake.register(con, REJECTED_EVENTS, day, existing_only=True):
            for name, rejected in con.sql("select file, count(*) from rejected_events "
                                          "group by all").fetchall():
                counts.setdefault(name, {"events": 0, "rejected": 0})["rejected"] = rejected
    rows += [{"kind": "file", "hour": _hour_of(name), "name": name, "events": c["events"],
              "rejected": c["rejected"], "identity": None} for name, c in sorted(counts.items())]
    for start in partition_starts(Grain.HOUR, day):
        identity = file_identity(lake.partition_path(MINUTE_AGGREGATE, start))
        rows.append({"kind": "hour", "hour": f"{start:%Y-%m-%dT%H}:00", "name": None,
                     "events": None, "rejected": None,
                     "identity": ":".join(map(str, identity)) if identity else None})
    return pd.DataFrame(rows, columns=INPUT_COLUMNS).astype(
        {"events": "Int64", "rejected": "Int64"})


def revision_base(lake: Lake, window: TimeWindow, current: pd.DataFrame) -> pd.DataFrame:
    """What the coming publication of the window is compared with, per day: the figures an
    interrupted earlier attempt kept, else the day's current ones, kept now until
    `clear_revision_base` (after the revision is recorded)."""
    dates = pd.to_datetime(current["date"]).dt.date if not current.empty else current["date"]
    frames = []
    for start in partition_starts(Grain.DAY, window):
        path = lake.partition_path(REVISION_BASES, start)
        if path.exists():
            frames.append(pd.read_parquet(path))
            continue
        day_rows = current[dates == start.date()] if not current.empty else current
        with closing(compute_connection()) as con:
            lake.write(REVISION_BASES, start, con.from_df(day_rows.reset_index(drop=True)))
        frames.append(day_rows)
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else current.iloc[0:0]


def clear_revision_base(lake: Lake, window: TimeWindow) -> None:
    for start in partition_starts(Grain.DAY, window):
        lake.partition_path(REVISION_BASES, start).unlink(missing_ok=True)


def previous_inputs(lake: Lake, day_start: datetime) -> pd.DataFrame | None:
    path = lake.partition_path(DAY_INPUTS, day_start)
    return pd.read_parquet(path) if path.exists() else None


def save_inputs(lake: Lake, day_start: datetime, inputs: pd.DataFrame) -> None:
    with closing(compute_connection()) as con:
        lake.write(DAY_INPUTS, day_start, con.from_df(inputs))


@dataclass
class InputChanges:
    hours_rerun: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        for change in self.files:
            delta = (change["events"] or 0) - (change["events_before"] or 0)
            parts.append(f"{change['change']} landing file {Path(change['file']).name} in "
                         f"{change['hour'][11:] if change['hour'] else '?'} "
                         f"({change['events'] or 0:,} events, {delta:+,})")
        if self.hours_rerun and not self.files:
            parts.append(f"hour(s) {', '.join(h[11:] for h in self.hours_rerun)} re-run with "
                         "the same landing files")
        return "; ".join(parts)


def compare_inputs(before: pd.DataFrame | None, now: pd.DataFrame) -> InputChanges:
    if before is None:
        return InputChanges()
    old_hours = dict(zip(before[before.kind == "hour"].hour, before[before.kind == "hour"].identity,
                         strict=True))
    hours = [row.hour for row in now[now.kind == "hour"].itertuples()
             if row.identity is not None and old_hours.get(row.hour) != row.identity]
    old_files = {row.name: row for row in before[before.kind == "file"].itertuples()}
    new_files = {row.name: row for row in now[now.kind == "file"].itertuples()}
    files = []
    for name in sorted(old_files.keys() | new_files.keys()):
        old, new = old_files.get(name), new_files.get(name)
        counts = lambda row: (None, None) if row is None else (  # noqa: E731
            int(row.events), int(row.rejected))
        (events_before, rejected_before), (events, rejected) = counts(old), counts(new)
        if (events_before, rejected_before) == (events, rejected):
            continue
        files.append({"file": name, "hour": (new or old).hour,
                      "change": "new" if old is None else "removed" if new is None else "changed",
                      "events_before": events_before, "events": events,
                      "rejected_before": rejected_before, "rejected": rejected})
    return InputChanges(hours, files)


FIGURES = ("scenario_name", "slo_target_pct", "total_requests", "failed_requests",
           "availability_pct")


def changed_scenarios(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per scenario of the day whose figures moved: the figures before (`*_before`) and now;
    a scenario new or gone has the other side empty."""
    compared = after.merge(before, on=["date", "scenario_id"], how="outer",
                           suffixes=("", "_before"))

    def moved(row: pd.Series) -> bool:
        for name in FIGURES:
            old, new = row[f"{name}_before"], row[name]
            if pd.isna(old) and pd.isna(new):
                continue
            if pd.isna(old) or pd.isna(new):
                return True
            if isinstance(new, float) and abs(float(new) - float(old)) <= 1e-9 * max(
                    1.0, abs(float(new))):
                continue
            if old != new:
                return True
        return False

    return compared[compared.apply(moved, axis=1)] if not compared.empty else compared


def _value(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def reason(row: dict[str, Any], changes: InputChanges) -> str:
    """One sentence: what moved and why, as far as the inputs tell."""
    causes = []
    if row["slo_target_pct_before"] != row["slo_target_pct"] and None not in (
            row["slo_target_pct_before"], row["slo_target_pct"]):
        causes.append(f"SLO target edited {row['slo_target_pct_before']:g} % → "
                      f"{row['slo_target_pct']:g} %")
    if row["scenario_name_before"] != row["scenario_name"] and None not in (
            row["scenario_name_before"], row["scenario_name"]):
        causes.append(f"renamed {row['scenario_name_before']!r} → {row['scenario_name']!r}")
    if row["total_requests_before"] is None:
        causes.append("published for the first time on this day (added to scenarios.csv, or "
                      "no longer held back)")
    if row["total_requests"] is None:
        causes.append("no longer published on this day")
    described = changes.describe()
    if described:
        causes.append(described)
    return "; ".join(causes) or "figures moved with no change of landing files or hours seen"


def record_revisions(lake: Lake, run_id: str, window: TimeWindow, before: pd.DataFrame,
                     after: pd.DataFrame, inputs_before: dict[date, pd.DataFrame | None],
                     inputs_now: dict[date, pd.DataFrame],
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """The revision rows of this publication (nothing for a first one), recorded."""
    revised_at = utc_naive(now or datetime.now(UTC))
    before, after = (frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
                     for frame in (before, after))
    rows = []
    for day_window in by_day(window):
        day = day_window.start.date()
        previous = inputs_before.get(day)
        day_before = before[before["date"] == day] if not before.empty else before
        if day_before.empty:
            continue  # a first publication revises nothing
        changes = compare_inputs(previous, inputs_now[day])
        day_after = after[after["date"] == day]
        for changed in changed_scenarios(day_before, day_after).to_dict("records"):
            row = {"date": day, "scenario_id": changed["scenario_id"], "revision_id": run_id,
                   "revised_at": revised_at,
                   "hours_rerun": ", ".join(h[11:] for h in changes.hours_rerun),
                   "files": json.dumps(changes.files)}
            for name in FIGURES:
                row[f"{name}_before"] = _value(changed[f"{name}_before"])
                row[name] = _value(changed[name])
            row["reason"] = reason(row, changes)
            rows.append(row)
    revisions_table(lake.root).add(rows)
    targets = [row for row in rows if None not in (row["slo_target_pct_before"],
                                                    row["slo_target_pct"])
               and row["slo_target_pct_before"] != row["slo_target_pct"]]
    note(lake.root, (Annotation(
        starts_at=datetime.combine(row["date"], datetime.min.time()), scope="scenario",
        scope_value=row["scenario_id"], kind="reference_change",
        text=f"{row['scenario_id']}: {reason(row, InputChanges())}",
        source="platform:scenario_daily",
        annotation_id=platform_id("target", row["date"], row["scenario_id"],
                                  row["slo_target_pct_before"], row["slo_target_pct"]),
    ) for row in targets), log)
    return rows


def revisions_of(lake_dir: Path, day: date, scenario_id: str | None = None) -> list[dict]:
    """The recorded revisions of a day (of one scenario, matched in any case), oldest first."""
    rows = revisions_table(lake_dir).read_day(day)
    if scenario_id is not None:
        rows = [row for row in rows if row["scenario_id"].lower() == scenario_id.lower()]
    return sorted(rows, key=lambda row: (row["revised_at"], row["scenario_id"]))
