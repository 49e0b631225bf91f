"""Figures and pages kept between requests for as long as what they were made from is unchanged.

A closed day's figures cannot change unless one of its partitions is rewritten (a late file, a
re-run, a reference edit). The files are fingerprinted (inode, modification time and size of
each) before they are read, so a rewrite during the read makes the kept figures look older than
they are, never newer: the next request reads again. A page is kept with the readings it was
rendered from, and rendered again when either is read again.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import date
from typing import Generic, TypeVar

import duckdb
from dagster import TimeWindow

from telemetry_assets.lake import Lake, Reading, Table
from telemetry_assets.live import REFRESHES, bring_days_up_to_date, read_current

T = TypeVar("T")


class Kept(Generic[T]):
    """The latest `size` values, each under its key with the version it was made from."""

    def __init__(self, size: int = 64):
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[object, T]] = OrderedDict()
        self._lock = threading.Lock()
        # The key of each value made rather than reused, in order: what the readers cost.
        self.made: list[Hashable] = []

    def get(self, key: Hashable, version: object, make: Callable[[], T],
            keep: Callable[[T], bool] = lambda _value: True) -> T:
        """The value kept under `key` if it was made from `version`; else `make()`'s, kept
        when `keep` says so."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == version:
                self._kept.move_to_end(key)
                return kept[1]
        # Made outside the lock: two readers may both make it, and neither waits on the other.
        value = make()
        with self._lock:
            self.made.append(key)
            if keep(value):
                self._kept[key] = (version, value)
                self._kept.move_to_end(key)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return value


class KeptFigures(Kept[Reading]):
    """Lake readings, reused while none of the partitions they read has changed."""

    def __init__(self, lake: Lake, size: int = 64):
        super().__init__(size)
        self.lake = lake

    def read(self, key: Hashable, reads: Mapping[Table, TimeWindow | None],
             query: Callable[[duckdb.DuckDBPyConnection], T],
             days: Iterable[date] = ()) -> Reading[T]:
        """`query`'s reading, provisional figures included (telemetry_assets/live.py), those of
        `days` brought up to date first; `reads` must name every partition the query reads."""
        bring_days_up_to_date(self.lake, days)
        # Every refresh of the open hours rewrites their refresh rows: a new version.
        version = (self.lake.fingerprint(reads),
                   self.lake.live.fingerprint({**reads, REFRESHES: None}))
        # A reading made without a damaged file is made again: whether the file is still
        # damaged, and what the rest of the lake says without it, is worth a fresh look.
        return self.get(key, version, lambda: read_current(self.lake, query),
                        keep=lambda reading: not reading.damage)
