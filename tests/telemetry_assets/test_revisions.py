"""Revisions: what changed between two publications of a day, on literal rows, and through the
pipeline when the reference data is edited or nothing changed."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from telemetry_assets.revisions import (
    INPUT_COLUMNS,
    InputChanges,
    changed_scenarios,
    compare_inputs,
    reason,
    revisions_of,
)
from telemetry_assets.tables import REVISION_BASES
from telemetry_core.annotations import AnnotationStore
from tests.events import wire_event
from tests.helpers import write_landing

DAY = date(2026, 11, 20)


def inputs(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=INPUT_COLUMNS).astype({"events": "Int64",
                                                             "rejected": "Int64"})


def test_inputs_name_new_changed_and_removed_files_and_rewritten_hours():
    before = inputs(("file", "2026-11-20T10:00", "/l/a.jsonl", 10, 0, None),
                    ("file", "2026-11-20T10:00", "/l/b.jsonl", 5, 1, None),
                    ("file", "2026-11-20T11:00", "/l/gone.jsonl", 2, 0, None),
                    ("hour", "2026-11-20T10:00", None, None, None, "1:1:1"),
                    ("hour", "2026-11-20T11:00", None, None, None, "2:2:2"),
                    ("hour", "2026-11-20T12:00", None, None, None, "3:3:3"))
    now = inputs(("file", "2026-11-20T10:00", "/l/a.jsonl", 10, 0, None),
                 ("file", "2026-11-20T10:00", "/l/b.jsonl", 7, 0, None),
                 ("file", "2026-11-20T10:00", "/l/late.jsonl", 3, 1, None),
                 ("hour", "2026-11-20T10:00", None, None, None, "9:9:9"),
                 ("hour", "2026-11-20T11:00", None, None, None, "8:8:8"),
                 ("hour", "2026-11-20T12:00", None, None, None, "3:3:3"))
    changes = compare_inputs(before, now)
    assert changes.hours_rerun == ["2026-11-20T10:00", "2026-11-20T11:00"]
    assert [(f["file"], f["change"], f["events_before"], f["events"]) for f in changes.files] == [
        ("/l/b.jsonl", "changed", 5, 7), ("/l/gone.jsonl", "removed", 2, None),
        ("/l/late.jsonl", "new", None, 3)]
    assert changes.describe() == (
        "changed landing file b.jsonl in 10:00 (7 events, +2); removed landing file gone.jsonl "
        "in 11:00 (0 events, -2); new landing file late.jsonl in 10:00 (3 events, +3)")
    assert compare_inputs(None, now).files == [] and compare_inputs(now, now).hours_rerun == []


def published(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["date", "scenario_id", "scenario_name", "slo_target_pct",
                                       "total_requests", "failed_requests", "availability_pct"])


def test_only_scenarios_whose_figures_moved_are_revisions():
    before = published((DAY, "a", "A", 99.9, 100, 1, 99.0), (DAY, "b", "B", 99.5, 50, 0, 100.0),
                       (DAY, "gone", "G", 99.0, 5, 0, 100.0))
    after = published((DAY, "a", "A", 99.95, 100, 1, 99.0 + 1e-13),  # target edited only
                      (DAY, "b", "B", 99.5, 50, 0, 100.0),  # unchanged
                      (DAY, "new", "N", 99.0, 7, 7, 0.0))
    changed = {row["scenario_id"]: row for row in changed_scenarios(before, after).to_dict(
        "records")}
    assert sorted(changed) == ["a", "gone", "new"]
    row = {**{f"{k}_before": changed["a"][f"{k}_before"] for k in (
        "scenario_name", "slo_target_pct", "total_requests")},
           **{k: changed["a"][k] for k in ("scenario_name", "slo_target_pct", "total_requests")}}
    assert reason(row, InputChanges()) == "SLO target edited 99.9 % → 99.95 %"
    added = {"scenario_name_before": None, "scenario_name": "N", "slo_target_pct_before": None,
             "slo_target_pct": 99.0, "total_requests_before": None, "total_requests": 7}
    assert reason(added, InputChanges()).startswith("published for the first time")


@pytest.fixture
def published_day(platform):
    hour = datetime(2026, 11, 20, 10, tzinfo=UTC)
    write_landing(platform.settings.landing_dir, hour, "batch", [
        wire_event(f"e{n}", time=f"2026-11-20T10:{n:02d}:00.000Z", status=0 if n % 4 else 9)
        for n in range(40)])
    platform.run_whole_day("2026-11-20")
    return platform


def test_an_unchanged_rerun_records_nothing_and_a_target_edit_is_explained(published_day):
    platform = published_day
    platform.run_days("2026-11-20")
    assert revisions_of(platform.settings.lake_dir, DAY) == []

    scenarios = platform.settings.reference_dir / "scenarios.csv"
    scenarios.write_text(scenarios.read_text().replace("checkout.quote,Purchase quote,checkout,"
                                                       "99.5", "checkout.quote,Purchase quote,"
                                                       "checkout,99.9"))
    platform.run_reference()
    platform.run_days("2026-11-20")
    (revision,) = revisions_of(platform.settings.lake_dir, DAY, "CHECKOUT.QUOTE")
    assert (revision["slo_target_pct_before"], revision["slo_target_pct"]) == (99.5, 99.9)
    assert revision["total_requests_before"] == revision["total_requests"] == 40
    assert revision["hours_rerun"] == "" and revision["files"] == "[]"
    assert revision["reason"] == "SLO target edited 99.5 % → 99.9 %"
    day_start = datetime(2026, 11, 20)
    (noted,) = [a for a in AnnotationStore(platform.settings.lake_dir).between(
        day_start, day_start + timedelta(days=1)) if a.kind == "reference_change"]
    assert noted.scope_value == "checkout.quote" and "99.5 % → 99.9 %" in noted.text


class Killed(BaseException):
    """Stands for SIGKILL at a line: nothing after it runs, not even `except Exception`."""


def test_a_publication_killed_before_its_revision_is_explained_when_run_again(published_day,
                                                                              monkeypatch):
    platform = published_day
    from telemetry_assets.assets import published

    write_landing(platform.settings.landing_dir, datetime(2026, 11, 20, 10, tzinfo=UTC),
                  "late", [wire_event("late-1", time="2026-11-20T10:50:00.000Z", status=9)])
    platform.run_hours("2026-11-20-10:00")

    def killed(*_args, **_kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(published, "explain_publication", killed)
        with pytest.raises(BaseException) as caught:
            platform.run_days("2026-11-20")
        assert isinstance(caught.value, Killed) or "Killed" in repr(caught.value)
    # The new figures are out, their revision is not: the next run compares with the
    # figures before the killed one, not with its own.
    (published_row,) = platform.query("select total_requests from published.scenario_daily "
                                      "where scenario_id = 'checkout.quote'")
    assert published_row["total_requests"] == 41
    assert revisions_of(platform.settings.lake_dir, DAY) == []
    platform.run_days("2026-11-20")
    (revision,) = revisions_of(platform.settings.lake_dir, DAY)
    assert (revision["total_requests_before"], revision["total_requests"]) == (40, 41)
    assert "new landing file late.jsonl in 10:00" in revision["reason"]
    assert not platform.lake.partition_path(REVISION_BASES, datetime(2026, 11, 20)).exists()
