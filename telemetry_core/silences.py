"""Silences: matching notifications are muted for a window (a planned maintenance, say).

A silenced change is still recorded, and its delivery is kept with the status `silenced`, so
what happened during the window stays visible; only the message is not sent. A silence matches
on globs over the scenario, the service and the partner (a silence that names no partner mutes
the mood of all traffic and every partner's own), over the half-open window [starts_at,
ends_at) of the change's instant. Stored in `alerts.silences`, a file per day the silence
starts (telemetry_core/recorded.py), by `telemetry silence` and `POST /v1/silences`.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pyarrow as pa

from telemetry_core.recorded import RecordedTable
from telemetry_core.routes import Change, bad_glob
from telemetry_core.sql import utc_naive

TABLE_PATH = ("alerts", "silences")
# Longer windows are a route to change, not a silence; the bound also keeps a lookup to the
# files of the last MAX_LENGTH's days.
MAX_LENGTH = timedelta(days=30)
MATCH_KEYS = ("scenario", "service", "partner")

SCHEMA = pa.schema([
    ("silence_id", pa.string()),
    ("scenario", pa.string()),
    ("service", pa.string()),
    ("partner", pa.string()),
    ("starts_at", pa.timestamp("us")),
    ("ends_at", pa.timestamp("us")),
    ("reason", pa.string()),
    ("created_by", pa.string()),
    ("created_at", pa.timestamp("us")),
])


class SilenceError(ValueError):
    """A silence that cannot be recorded: `field` says which of its fields is wrong."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Silence:
    silence_id: str
    scenario: str
    service: str
    partner: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime

    def active_at(self, moment: datetime) -> bool:
        return self.starts_at <= utc_naive(moment) < self.ends_at

    def matches(self, change: Change, moment: datetime) -> bool:
        """Whether the change, at `moment`, is muted by this silence."""
        if not self.active_at(moment):
            return False
        if self.partner is not None and (
                change.partner_id is None
                or not fnmatchcase(change.partner_id.lower(), self.partner.lower())):
            return False
        scenario = change.scenario_id.partition("/")[0]
        return (fnmatchcase(scenario.lower(), self.scenario.lower())
                and fnmatchcase((change.service or "").lower(), self.service.lower()))

    def describe(self) -> str:
        scope = [f"{key} {value}" for key, value in (
            ("scenario", self.scenario), ("service", self.service),
            ("partner", self.partner)) if value not in (None, "*")]
        return (f"{', '.join(scope) or 'everything'} from {self.starts_at:%Y-%m-%d %H:%M} to "
                f"{self.ends_at:%Y-%m-%d %H:%M} UTC" + (f": {self.reason}" if self.reason
                                                        else ""))


def build_silence(match: Mapping[str, str], ends_at: datetime, starts_at: datetime | None = None,
                  reason: str = "", created_by: str = "", now: datetime | None = None) -> Silence:
    """A validated silence; raises SilenceError naming the field that is wrong."""
    unknown = sorted(set(match) - set(MATCH_KEYS))
    if unknown:
        raise SilenceError("match", f"unknown key {unknown[0]!r} (one of: "
                                    f"{', '.join(MATCH_KEYS)})")
    if not match:
        raise SilenceError("match", "a silence needs at least one of "
                                    f"{', '.join(MATCH_KEYS)} (use '*' to mute everything)")
    for key, glob in match.items():
        if not isinstance(glob, str) or not glob.strip():
            raise SilenceError(key, "must be a non-empty glob")
        problem = bad_glob(glob)
        if problem:
            raise SilenceError(key, f"{glob!r} is not a valid glob: {problem}")
    created_at = utc_naive(now or datetime.now(UTC))
    starts = utc_naive(starts_at) if starts_at else created_at
    ends = utc_naive(ends_at)
    if ends <= starts:
        raise SilenceError("until", f"{ends:%Y-%m-%dT%H:%M:%SZ} is not after the start "
                                    f"{starts:%Y-%m-%dT%H:%M:%SZ}")
    if ends - starts > MAX_LENGTH:
        raise SilenceError("until", f"a silence lasts at most {MAX_LENGTH.days} days")
    if len(reason) > 2000:
        raise SilenceError("reason", "at most 2000 characters")
    fields = {key: match.get(key, "*").strip() for key in ("scenario", "service")}
    partner = match.get("partner", "").strip() or None
    digest = hashlib.sha256(repr((sorted(match.items()), starts, ends, reason, created_by,
                                  created_at)).encode()).hexdigest()[:16]
    return Silence(silence_id=f"silence-{digest}", partner=partner, starts_at=starts,
                   ends_at=ends, reason=reason.strip(), created_by=created_by,
                   created_at=created_at, **fields)


class SilenceStore:
    """The silences of a lake (its root folder)."""

    def __init__(self, lake_dir: Path):
        self.table = RecordedTable(
            lake_dir, *TABLE_PATH, SCHEMA, key=lambda row: (row["silence_id"],),
            day_of=lambda row: row["starts_at"].date(),
            order=lambda row: (row["starts_at"], row["silence_id"]))

    def add(self, silences: Iterable[Silence]) -> list[Silence]:
        return [Silence(**row) for row in self.table.add(asdict(s) for s in silences)]

    def around(self, start: datetime, end: datetime) -> list[Silence]:
        """Every silence that overlaps [start, end)."""
        start, end = utc_naive(start), utc_naive(end)
        rows = self.table.read_days((start - MAX_LENGTH).date(), end.date())
        return [Silence(**row) for row in rows
                if row["starts_at"] < end and row["ends_at"] > start]


def as_json(silence: Silence) -> dict[str, Any]:
    row = asdict(silence)
    for key in ("starts_at", "ends_at", "created_at"):
        row[key] = row[key].replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return row
