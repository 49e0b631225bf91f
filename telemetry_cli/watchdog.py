"""While a `telemetry` command runs the pipeline, runs killed elsewhere are ended and their
pool slots freed, so that this command never waits for a slot a dead process holds."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance

from telemetry_assets.automation.orphaned_runs import reap_orphaned_runs

REAP_EVERY_S = 5.0


@contextmanager
def reaping_orphans(instance: DagsterInstance) -> Iterator[list[str]]:
    """Reap once now, then every few seconds until the block ends; yields the reaped run ids."""
    reaped = reap_orphaned_runs(instance)
    if not os.environ.get("DAGSTER_HOME"):
        # An ephemeral instance is this process's own: no other process's run is in it.
        yield reaped
        return
    stop = threading.Event()

    def watch() -> None:
        # Storage connections are not shared across threads: the watcher opens its own.
        with DagsterInstance.get() as own:
            while not stop.wait(REAP_EVERY_S):
                reaped.extend(reap_orphaned_runs(own))

    watcher = threading.Thread(target=watch, name="orphaned-run-reaper", daemon=True)
    watcher.start()
    try:
        yield reaped
    finally:
        stop.set()
        watcher.join(timeout=REAP_EVERY_S * 2)
