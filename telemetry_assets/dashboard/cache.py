"""Figures kept between requests for as long as the lake files they were read from are unchanged.

A closed day's figures cannot change unless one of its partitions is rewritten (a late file, a
re-run, a reference edit). The files are fingerprinted (inode, modification time and size of
each) before they are read, so a rewrite during the read makes the kept figures look older than
they are, never newer: the next request reads again.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import duckdb
from dagster import TimeWindow

from telemetry_assets.lake import Lake, Reading, Table

T = TypeVar("T")


class KeptFigures:
    """The latest `size` readings, each under its key and the fingerprint of what it read."""

    def __init__(self, lake: Lake, size: int = 64):
        self.lake = lake
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[Any, Reading]] = OrderedDict()
        self._lock = threading.Lock()
        # The key of each reading made rather than reused, in order: what a reader cost.
        self.readings: list[Hashable] = []

    def read(self, key: Hashable, reads: Mapping[Table, TimeWindow | None],
             query: Callable[[duckdb.DuckDBPyConnection], T]) -> Reading[T]:
        """`query`'s reading, reused while none of the partitions in `reads` has changed.
        `reads` must name every partition the query reads."""
        fingerprint = self.lake.fingerprint(reads)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == fingerprint:
                self._kept.move_to_end(key)
                return kept[1]
        reading = self.lake.read(query)
        with self._lock:
            self.readings.append(key)
            # Figures read without a damaged file are read again: whether it is still damaged, and
            # what the rest of the lake says without it, is worth a fresh look each time.
            if not reading.damage:
                self._kept[key] = (fingerprint, reading)
                self._kept.move_to_end(key)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return reading
