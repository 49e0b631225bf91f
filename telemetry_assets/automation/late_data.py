"""Landing files that arrive late re-run their hour, then its day.

An hour is re-run when one of its landing files changed (was written or renamed into
the folder: its ctime) after the run that last materialized `raw_events` for that hour started,
so the run cannot have read it. The re-run reads all of the hour's files again and the pipeline
keeps one copy per event id, so a late file is counted once however often the hour runs. Once
an hour of an already published day is materialized again, the day is re-run too: the day is
requested only after its hours are, never alongside them, so that it reads their new files.

An event id seen again within the dedupe horizon is one event, and the copy in the earliest hour
wins. So when an hour runs after later ones (its files were late, or it was backfilled after
them), those later hours may have kept an event that is now a duplicate: filtered_events lists
them in its `later_hours_to_rerun` metadata, and they are re-run too (then their days).

The cursor is a file-change watermark: only hours with a file changed since the previous
evaluation are compared with Dagster's records. It never passes the start of a run still in
progress, because such a run may have listed an hour's files before a late one arrived. Beside
it, the last filtered_events materialization whose later hours were judged.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    TimeWindow,
    sensor,
)

from telemetry_assets.automation.schedules import DAY_INPUTS
from telemetry_assets.jobs import (
    DAILY_JOB,
    HOURLY_JOB,
    LATER_HOURS_TO_RERUN,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RUN_KEY_TAG,
    TRIGGER_TAG,
    UNFINISHED_STATUSES,
    daily_job,
    hourly_job,
)
from telemetry_assets.partitions import daily_partitions, hourly_partitions, keys_in, window_of_key
from telemetry_assets.resources import AutomationPolicy, AutomationSettings, TelemetryStore
from telemetry_assets.tables import FILTERED_EVENTS, RAW_EVENTS, SCENARIO_DAILY
from telemetry_core.annotations import Annotation, note, platform_id
from telemetry_core.landing import landing_files
from telemetry_core.sql import utc_naive

# File times come from the kernel's coarse clock (or whole seconds on some network filesystems)
# and run start times from time.time(): comparing with this much slack can only cause an extra
# re-run of an hour, never miss a file.
CLOCK_MARGIN_S = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LateDataCursor:
    """Files changed before `files_after` (less the clock margin) have been judged already."""

    files_after: float = 0.0
    # Storage id of the last filtered_events materialization whose stale hours were requested.
    filtered_after: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> "LateDataCursor":
        return cls(**json.loads(text)) if text else cls()

    def to_json(self) -> str:
        return json.dumps({"files_after": self.files_after, "filtered_after": self.filtered_after})


def run_window(run: DagsterRun) -> TimeWindow | None:
    """The time a partitioned run covers, from its partition or range tags."""
    first = run.tags.get(PARTITION_TAG) or run.tags.get(RANGE_START_TAG)
    last = run.tags.get(PARTITION_TAG) or run.tags.get(RANGE_END_TAG)
    if not first or not last:
        return None
    start, end = window_of_key(first), window_of_key(last)
    return TimeWindow(start.start, end.end) if start and end else None


def _overlaps(window: TimeWindow | None, other: TimeWindow) -> bool:
    return window is not None and window.start < other.end and other.start < window.end


class _Records:
    """Look-ups in the instance for one evaluation, with run start times cached."""

    def __init__(self, instance: DagsterInstance):
        self.instance = instance
        self._runs: dict[str, RunRecord | None] = {}

    def run(self, run_id: str) -> RunRecord | None:
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_record_by_id(run_id)
        return self._runs[run_id]

    def latest_run(self, asset_key: AssetKey, partition_key: str) -> tuple[float, dict] | None:
        """When the run that last materialized this partition started, and its tags."""
        result = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
        )
        if not result.records:
            return None
        record = result.records[0]
        run = self.run(record.run_id)
        # A run without a start time (imported history) is dated by its materialization.
        started = run.start_time if run and run.start_time else record.timestamp
        return started, dict(run.dagster_run.tags) if run else {}

    def latest_storage_id(self, asset_key: AssetKey, partition_key: str) -> int | None:
        result = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
        )
        return result.records[0].storage_id if result.records else None

    def newest_since(
        self, asset_key: AssetKey, partition_keys: list[str], after: float
    ) -> int | None:
        """Storage id of the newest materialization of any of the partitions after `after`."""
        result = self.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=asset_key, asset_partitions=partition_keys, after_timestamp=after
            ),
            limit=1,
        )
        return result.records[0].storage_id if result.records else None


def _changed_files(landing_dir: Path, hour_start: datetime) -> dict[Path, float]:
    changed = {}
    for path in landing_files(landing_dir, hour_start):
        try:
            changed[path] = path.stat().st_ctime
        except FileNotFoundError:
            continue  # replaced or removed since the listing; its successor is listed next time
    return changed


def late_hour_requests(
    records: _Records, landing_dir: Path, hours: list[str], files_after: float
) -> list[RunRequest]:
    requests = []
    for hour in hours:
        changed = _changed_files(landing_dir, hourly_partitions.time_window_for_partition_key(
            hour).start)
        if not any(when > files_after - CLOCK_MARGIN_S for when in changed.values()):
            continue
        latest = records.latest_run(AssetKey(RAW_EVENTS.asset), hour)
        if latest is None:
            continue  # never run: the schedule or a backfill will read every file there is
        processed, run_tags = latest
        late = sorted(path for path, when in changed.items()
                      if when > processed - CLOCK_MARGIN_S)
        if not late:
            continue
        # A new late file changes the key, so it gets its own re-run even while one runs.
        run_key = f"late-hour:{hour}:{max(changed[path] for path in late):.6f}"
        if run_tags.get(RUN_KEY_TAG) == run_key:
            continue  # the hour last ran because of these very files, so after they landed
        requests.append(RunRequest(
            job_name=HOURLY_JOB,
            partition_key=hour,
            run_key=run_key,
            tags={TRIGGER_TAG: "late_data", "telemetry/late_files": str(len(late)),
                  "telemetry/newest_late_file": late[-1].name},
        ))
    return requests


def late_data_annotation(request: RunRequest) -> Annotation:
    """What the charts show over an hour re-run for late files (one per new set of files)."""
    window = hourly_partitions.time_window_for_partition_key(request.partition_key)
    files = int(request.tags["telemetry/late_files"])
    return Annotation(
        starts_at=utc_naive(window.start), ends_at=utc_naive(window.end), kind="late_data",
        text=f"{files} landing file(s) arrived after {window.start:%H:%M} was processed "
             f"(newest {request.tags['telemetry/newest_late_file']}): the hour and its day "
             "are run again",
        source="platform:late_landing_files",
        annotation_id=platform_id("late_data", request.run_key),
    )


def later_hour_requests(
    records: _Records, filtered_after: int | None, since: datetime
) -> tuple[list[RunRequest], int | None]:
    """Hours that a newer run of an earlier hour lists as stale (they kept a copy of an event seen
    earlier), unless they have run again since; and the new position of the cursor."""
    asset_key = AssetKey(FILTERED_EVENTS.asset)
    listed_by: dict[str, int] = {}
    newest = filtered_after
    while True:
        result = records.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, after_storage_id=newest,
                               after_timestamp=None if newest else since.timestamp()),
            limit=500, ascending=True,
        )
        for record in result.records:
            newest = record.storage_id
            materialization = record.asset_materialization
            listed = materialization.metadata.get(LATER_HOURS_TO_RERUN) if materialization else None
            for hour in listed.value if listed else []:
                listed_by[hour] = record.storage_id
        if not result.has_more:
            break
    requests = []
    for hour, storage_id in sorted(listed_by.items()):
        latest = records.latest_storage_id(asset_key, hour)
        if latest is not None and latest > storage_id:
            continue  # it ran after the earlier hour did, so it read that hour's copies
        requests.append(RunRequest(
            job_name=HOURLY_JOB,
            partition_key=hour,
            run_key=f"earlier-copies:{hour}:{storage_id}",
            tags={TRIGGER_TAG: "late_data", "telemetry/reason": "an earlier hour holds copies "
                  "of events this hour kept"},
        ))
    return requests, newest


def stale_day_requests(
    records: _Records, days: list[str], unfinished: list[RunRecord]
) -> list[RunRequest]:
    """Published days with an hour materialized after the day's last run started."""
    requests = []
    for day in days:
        latest = records.latest_run(AssetKey(SCENARIO_DAILY.asset), day)
        if latest is None:
            continue  # never published: the daily schedule runs it once its hours are in
        published, _ = latest
        window = daily_partitions.time_window_for_partition_key(day)
        if any(_overlaps(run_window(run.dagster_run), window) for run in unfinished):
            continue  # its hours or the day itself are running: judge once they are done
        hours = keys_in(hourly_partitions, window)
        newer = [storage_id for key in DAY_INPUTS
                 if (storage_id := records.newest_since(key, hours, published)) is not None]
        if newer:
            requests.append(RunRequest(
                job_name=DAILY_JOB,
                partition_key=day,
                run_key=f"late-day:{day}:{max(newer)}",
                tags={TRIGGER_TAG: "late_data"},
            ))
    return requests


def evaluate_late_data(
    instance: DagsterInstance,
    landing_dir: Path,
    cursor: str | None,
    settings: AutomationPolicy,
    lake_dir: Path | None = None,
) -> SensorResult:
    scan_started = time.time()
    previous = LateDataCursor.parse(cursor)
    closed_by = datetime.fromtimestamp(scan_started, UTC).replace(minute=0, second=0,
                                                                  microsecond=0)
    since = closed_by - settings.late_data_lookback
    hours = keys_in(hourly_partitions, TimeWindow(since, closed_by))
    days = keys_in(daily_partitions,
                   TimeWindow(since.replace(hour=0), closed_by + timedelta(days=1)))
    unfinished = list(instance.get_run_records(RunsFilter(statuses=list(UNFINISHED_STATUSES))))
    records = _Records(instance)
    requests = late_hour_requests(records, landing_dir, hours, previous.files_after)
    if lake_dir is not None and requests:
        note(lake_dir, (late_data_annotation(request) for request in requests), log)
    later, filtered_after = later_hour_requests(records, previous.filtered_after, since)
    requests += later
    requests += stale_day_requests(records, days, unfinished)
    watermark = min([scan_started, *(run.start_time for run in unfinished if run.start_time)])
    # A run left "started" by a killed process must not pin the watermark for ever.
    watermark = max(watermark, since.timestamp())
    return SensorResult(
        run_requests=requests,
        cursor=LateDataCursor(watermark, filtered_after).to_json(),
        skip_reason=None if requests else (
            f"no landing file arrived after its hour was processed (last {len(hours)} hours)"
        ),
    )


@sensor(
    name="late_landing_files",
    jobs=[hourly_job, daily_job],
    minimum_interval_seconds=60,
    description="Re-runs an hour when a landing file arrives after the hour was processed "
    f"(last TELEMETRY_LATE_DATA_LOOKBACK_HOURS, default "
    f"{AutomationPolicy().late_data_lookback // timedelta(hours=1)}), and the later hours "
    "holding copies of its events, then the days that contain them.",
)
def late_landing_files(context: SensorEvaluationContext, store: TelemetryStore,
                       automation: AutomationSettings):
    return evaluate_late_data(
        context.instance, store.settings.landing_dir, context.cursor, automation.policy,
        store.settings.lake_dir,
    )
