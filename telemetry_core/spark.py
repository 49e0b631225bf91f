"""Running a stage's SQL on Spark (`TELEMETRY_ENGINE=spark`) over the same Parquet lake.

The stage files are written in the SQL both engines run (STYLE.md, "Portable SQL"); what differs
is around them, and lives here: parameters are `:name` markers bound by Spark rather than
DuckDB's `$name`, times are naive UTC on both sides (`TIMESTAMP_NTZ`, the session in UTC), and
Spark's output, a directory of part files, is committed as the one partition file the lake
expects, by an atomic rename, so a reader never sees half of it and a killed run leaves the
previous file.

`pyspark` is an optional dependency (`pip install 'telemetry-availability[spark]'`); it is
imported when a Spark session is first asked for.
"""

import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from telemetry_core.durable import replacing

DEFAULT_MASTER = "local[2]"
_sessions: dict[str, Any] = {}
_watches: dict[str, "ClusterWatch"] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)


class ClusterLost(RuntimeError):
    """The cluster went away under a running job (its master unreachable, no executor left)."""


class ClusterWatch(threading.Thread):
    """Cancels the session's jobs once its standalone cluster has been gone for
    `spark.network.timeout`: unreachable master(s) and not one executor left, while a job waits.

    A driver that has lost every executor waits for new ones forever (SPARK-6924, closed without
    a fix): with the master gone too, none can come, and a run would hang instead of failing. A
    master that is merely busy (another application holds every core) still accepts connections,
    so a queued run waits as Spark means it to."""

    def __init__(self, spark: Any, master: str) -> None:
        super().__init__(name=f"spark-cluster-watch {master}", daemon=True)
        self.context = spark.sparkContext
        self.master = master
        self.addresses = [tuple(hostport.rsplit(":", 1))
                          for hostport in master.removeprefix("spark://").split(",")]
        self.bound = self.context._jvm.org.apache.spark.network.util.JavaUtils.timeStringAsSec(
            self.context.getConf().get("spark.network.timeout", "120s"))
        self.lost: str | None = None
        self.ended = threading.Event()

    def reachable(self) -> bool:
        for host, port in self.addresses:
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
                return True
            except OSError:
                continue
        return False

    def gone(self) -> bool:
        busy = bool(self.context.statusTracker().getActiveJobsIds())
        # The memory status lists the driver's block manager beside the executors'.
        executors = self.context._jsc.sc().getExecutorMemoryStatus().size() - 1
        return busy and executors == 0 and not self.reachable()

    def run(self) -> None:
        since = None
        while not self.ended.wait(min(5.0, self.bound / 4)):
            try:
                if self.lost:
                    # Given up: a job started since (another partition's) fails too, at once.
                    if self.context.statusTracker().getActiveJobsIds():
                        self.context.cancelAllJobs()
                    continue
                if not self.gone():
                    since = None
                    continue
                since = since or time.monotonic()
                if time.monotonic() - since >= self.bound:
                    self.lost = (f"the Spark cluster at {self.master} is gone: its master has "
                                 f"been unreachable, with no executor left, for {self.bound} s "
                                 f"(spark.network.timeout)")
                    log.error("%s: cancelling its jobs", self.lost)
                    self.context.cancelAllJobs()
            except Exception as error:
                # A call into a context that is stopping: looked at again on the next tick,
                # until the session's end stops the watch.
                log.debug("cluster watch: %s", error)


def lost_cluster(spark: Any) -> str | None:
    """Why the session's cluster was given up, if it was."""
    watch = _watches.get(spark.sparkContext.master)
    return watch.lost if watch else None


def _stop(master: str) -> None:
    if master in _watches:
        _watches.pop(master).ended.set()
    _sessions.pop(master).stop()


def session(master: str = DEFAULT_MASTER) -> Any:
    """The process's Spark session for `master` (local[N], spark://host:port, …). A process
    holds one Spark context: asking for another master stops the session on the previous one."""
    with _lock:
        watch = _watches.get(master)
        if watch and watch.lost:
            if not watch.reachable():
                # A new session would spend a minute failing to register with it.
                raise ClusterLost(watch.lost)
            # The master is back: a new session registers with it afresh.
            _stop(master)
        if master not in _sessions:
            for previous in list(_sessions):
                _stop(previous)
            # Offline machines have no resolvable host name: everything on loopback.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            from pyspark.sql import SparkSession

            utc = "-Duser.timezone=UTC"
            _sessions[master] = (
                SparkSession.builder.master(master)
                .appName("telemetry-availability")
                .config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
                .config("spark.driver.bindAddress", os.environ["SPARK_LOCAL_IP"])
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.driver.extraJavaOptions", utc)
                .config("spark.executor.extraJavaOptions", utc)
                # DuckDB's TIMESTAMP is naive: read, cast and write naive times alike.
                .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
                .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
                .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
                .config("spark.sql.parquet.compression.codec", "zstd")
                # Arrow carries the driver's small tables (arrival times, stream defects).
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                # A partition is small: a few tasks, not the default 200.
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.ui.enabled", "false")
                # Progress bars on the console would fill the run logs.
                .config("spark.ui.showConsoleProgress", "false")
                .getOrCreate()
            )
            if master.startswith("spark://"):
                _watches[master] = ClusterWatch(_sessions[master], master)
                _watches[master].start()
        return _sessions[master]


def stop_all() -> None:
    """Stop every session this process started (a cluster going away wants its apps ended)."""
    with _lock:
        for master in list(_sessions):
            _stop(master)


def spark_sql(sql: str) -> str:
    """A stage's SQL with DuckDB's `$name` parameters as Spark's `:name` markers."""
    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", r":\1", sql)


def time_text(moment: datetime) -> str:
    """A naive UTC time as the text Spark casts to TIMESTAMP_NTZ: a Python datetime would arrive
    as a zoned TIMESTAMP, not DuckDB's naive one."""
    return f"{moment:%Y-%m-%d %H:%M:%S.%f}"


def spark_args(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as Spark binds them: a time as its text, cast by the SQL itself."""
    return {name: time_text(value) if isinstance(value, datetime) else value
            for name, value in params.items()}


def views_session(spark: Any, parquet: Mapping[str, Sequence[Path]] | None = None,
                  arrow: Mapping[str, Any] | None = None) -> Any:
    """A session of its own (so that the partitions computed at the same time do not see each
    other's views) with each name a view of its Parquet files, or of a small Arrow table the
    driver holds (the raw stage's arrival times and stream defects)."""
    own = spark.newSession()
    for name, paths in (parquet or {}).items():
        # Merging schemas is a Spark job of its own (every footer read on the cluster); the
        # partitions of a table rarely differ, and reading their footers here takes milliseconds.
        reader = own.read.option("mergeSchema", str(not _same_schema(paths)).lower())
        reader.parquet(*[str(path) for path in paths]).createOrReplaceTempView(name)
    for name, table in (arrow or {}).items():
        own.createDataFrame(table).createOrReplaceTempView(name)
    return own


def _same_schema(paths: Sequence[Path]) -> bool:
    import pyarrow.parquet as pq

    first, *rest = [pq.read_schema(path) for path in paths] or [None]
    return all(schema.equals(first) for schema in rest)


def query(own: Any, sql: str, params: Mapping[str, Any]) -> Any:
    """A stage's SQL on a session from views_session, with its parameters bound."""
    return own.sql(spark_sql(sql), args=spark_args(params))


def run(spark: Any, sql: str, views: Mapping[str, Sequence[Path]],
        params: Mapping[str, Any]) -> Any:
    """The SQL's result over each view's Parquet files."""
    return query(views_session(spark, parquet=views), sql, params)


# The column a frame written by write_partitions carries: the position of each row's partition.
PARTITION_INDEX = "_partition"
# What a run killed mid-write leaves in a staging folder is removed once it is this old: no write
# lasts a day, so nothing older is in use.
STALE_AFTER_S = 24 * 3600


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove the entries of `folder` matching `pattern` that a killed run left behind."""
    import contextlib

    for left in folder.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            if time.time() - left.stat().st_mtime > STALE_AFTER_S:
                if left.is_dir():
                    shutil.rmtree(left, ignore_errors=True)
                else:
                    left.unlink()


def window_conditions(column: str, windows: Sequence[tuple[datetime, datetime]]) -> list[Any]:
    """For each window, whether the row's `column` (a date or a time) lies in it, for
    tag_partitions."""
    from pyspark.sql import functions as F

    placed = F.col(column).cast("timestamp")
    return [(placed >= F.expr(f"timestamp'{time_text(start)}'"))
            & (placed < F.expr(f"timestamp'{time_text(end)}'"))
            for start, end in windows]


def member_conditions(column: str, groups: Sequence[Sequence[str]]) -> list[Any]:
    """For each group of values, whether the row's `column` is one of them, for tag_partitions."""
    from pyspark.sql import functions as F

    return [F.col(column).isin(list(group)) for group in groups]


def tag_partitions(frame: Any, conditions: Sequence[Any]) -> Any:
    """The frame's rows with PARTITION_INDEX, the position of the first condition that holds for
    them; a row for which none holds belongs to no partition and is left out."""
    from pyspark.sql import functions as F

    index = F.lit(None).cast("int")
    for position, condition in reversed(list(enumerate(conditions))):
        index = F.when(condition, F.lit(position)).otherwise(index)
    return frame.withColumn(PARTITION_INDEX, index).where(F.col(PARTITION_INDEX).isNotNull())


def tagged_union(frames: Sequence[Any]) -> Any:
    """frames[i] tagged with PARTITION_INDEX i, as one frame: the partitions of a chunk computed
    one by one (each from its own parameters) and written by one job."""
    from functools import reduce

    from pyspark.sql import functions as F

    return reduce(lambda left, right: left.unionByName(right),
                  [frame.withColumn(PARTITION_INDEX, F.lit(position))
                   for position, frame in enumerate(frames)])


def write_partitions(frame: Any, paths: Sequence[Path], order_by: Sequence[str] = ()) -> list[int]:
    """Replace each of `paths` (partition files of one table) with the rows of `frame` whose
    PARTITION_INDEX is its position, as one Parquet file sorted by `order_by`, durably and
    atomically; the row counts, in order.

    One job writes them all: on a cluster, a job costs far more than a quiet hour's rows. Each
    file is renamed into place on its own, as a run per partition would replace it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    staging = paths[0].parent.parent / f".spark-{uuid.uuid4().hex}"
    remove_stale(staging.parent, ".spark-*")
    # A partition's rows meet in one task, which writes them as one file, already in order.
    grouped = frame.repartition(PARTITION_INDEX).sortWithinPartitions(PARTITION_INDEX, *order_by)
    try:
        try:
            grouped.write.mode("overwrite").partitionBy(PARTITION_INDEX).parquet(str(staging))
        except Exception as error:
            if lost := lost_cluster(frame.sparkSession):
                raise ClusterLost(lost) from error
            raise
        schema = None
        counts = []
        for position, path in enumerate(paths):
            parts = sorted((staging / f"{PARTITION_INDEX}={position}").glob("*.parquet"))
            if len(parts) > 1:
                raise RuntimeError(f"one partition wrote {len(parts)} files in {staging}")
            with replacing(path) as temporary:
                if parts:
                    parts[0].rename(temporary)
                else:
                    # A partition without rows has no folder: its file holds the schema alone.
                    schema = schema or _arrow_schema(frame.drop(PARTITION_INDEX))
                    pq.write_table(pa.Table.from_pylist([], schema=schema), temporary)
                counts.append(pq.read_metadata(temporary).num_rows)
        return counts
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _arrow_schema(frame: Any) -> Any:
    """The frame's columns as Arrow types, from its Spark schema (times in microseconds, as
    Spark writes them), without running a job."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema, timezone="UTC")
