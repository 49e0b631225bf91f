"""The instance's event log (telemetry_assets/event_log.py) stores what Dagster's own stores."""

import shutil
from pathlib import Path

from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    Failure,
    HourlyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)

from telemetry_assets.event_log import SqliteEventLogKeepingEngines
from tests.helpers import REPO

HOURS = HourlyPartitionsDefinition(start_date="2026-11-01-00:00")
RANGE = {"dagster/asset_partition_range_start": "2026-11-01-00:00",
         "dagster/asset_partition_range_end": "2026-11-01-05:00"}


@asset(partitions_def=HOURS, backfill_policy=BackfillPolicy.single_run())
def hours(context) -> MaterializeResult:
    return MaterializeResult(metadata={"keys": len(context.partition_keys)})


@asset(partitions_def=HOURS, backfill_policy=BackfillPolicy.single_run(), deps=[hours])
def failing_hours(context) -> None:
    raise Failure("planted")


def open_instance(home: Path, product_settings: bool, monkeypatch) -> DagsterInstance:
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    if product_settings:
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))


def stored(instance: DagsterInstance, run_id: str) -> list[tuple]:
    return [(entry.dagster_event_type, entry.step_key,
             entry.dagster_event.partition if entry.dagster_event else None)
            for entry in instance.all_logs(run_id)]


def test_the_product_instance_stores_the_same_events_as_dagsters_own(tmp_path, monkeypatch):
    results = {}
    for product_settings in (True, False):
        with open_instance(tmp_path / str(product_settings), product_settings,
                           monkeypatch) as instance:
            assert isinstance(instance.event_log_storage,
                              SqliteEventLogKeepingEngines) == product_settings
            ok = materialize([hours], instance=instance, tags=RANGE)
            failed = materialize([hours, failing_hours], instance=instance, tags=RANGE,
                                 raise_on_error=False)
            assert ok.success and not failed.success
            results[product_settings] = (
                stored(instance, ok.run_id), stored(instance, failed.run_id),
                instance.get_materialized_partitions(AssetKey("hours")),
                len(instance.fetch_materializations(AssetKey("hours"), limit=100).records),
                instance.get_latest_materialization_event(AssetKey("hours")).run_id
                == failed.run_id,
            )
    assert results[True] == results[False]
    ok_events, failed_events, partitions, count, latest_is_failed_run = results[True]
    assert len(partitions) == 6 and count == 12 and latest_is_failed_run
    # One planned event per hour, which is what marks the hours of a failed run as failed.
    for kind in ("ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION"):
        assert sum(event[0].value == kind for event in ok_events) == 6
    assert sum(event[0].value == "ASSET_MATERIALIZATION_PLANNED" for event in failed_events) == 12


def test_many_runs_a_wipe_and_a_reopened_instance_keep_working(tmp_path, monkeypatch):
    home = tmp_path / "home"
    with open_instance(home, True, monkeypatch) as instance:
        storage = instance.event_log_storage
        run_ids = [materialize([hours], instance=instance, partition_key=f"2026-11-01-{h:02d}:00")
                   .run_id for h in range(SqliteEventLogKeepingEngines.KEPT_ENGINES // 8 + 6)]
        # More runs than engines kept: the oldest run's log is still read, from a new engine.
        storage.KEPT_ENGINES = 4
        assert all(stored(instance, run_id) for run_id in run_ids)
        assert len(storage._engines) <= 4
        instance.wipe()
        assert stored(instance, run_ids[0]) == []
        after = materialize([hours], instance=instance, partition_key="2026-11-02-00:00")
        assert after.success and stored(instance, after.run_id)
    with DagsterInstance.from_config(str(home)) as reopened:
        assert reopened.get_materialized_partitions(AssetKey("hours")) == {"2026-11-02-00:00"}


def test_the_event_log_lives_where_dagsters_default_puts_it(tmp_path, monkeypatch):
    # An instance that had Dagster's storage keeps its history when it takes this class.
    with open_instance(tmp_path / "home", False, monkeypatch) as instance:
        run_id = materialize([hours], instance=instance, partition_key="2026-11-01-00:00").run_id
    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogKeepingEngines)
        assert stored(instance, run_id)
        assert instance.get_materialized_partitions(AssetKey("hours")) == {"2026-11-01-00:00"}
    assert (tmp_path / "home" / "history" / "runs" / f"{run_id}.db").exists()
