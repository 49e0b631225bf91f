"""Annotations: what happened beside the numbers (a deploy, an incident, a late file, a failed
run), with a time or a time range, a scope, a kind, a text, a source and an optional link.

They live in the lake as `context.annotations`, one Parquet file per UTC day of their start, read
through the same views as every other table. People write them with `telemetry annotate` or the
receiver's `POST /v1/annotations`; the platform writes its own (source `platform:…`) with an id
derived from what they describe, so noticing the same thing twice records it once. Writers of one
day take turns and replace the day's file atomically (telemetry_core/recorded.py).
"""

import csv
import hashlib
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from telemetry_core.recorded import RecordedTable
from telemetry_core.sql import utc_naive

SCOPES = ("all", "service", "scenario", "partner")
MAX_TEXT_CHARS = 2000
MAX_LINK_CHARS = 2000
MAX_SOURCE_CHARS = 100
MAX_SCOPE_CHARS = 200
KIND = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# Times outside these are typing mistakes, and each day is a file.
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)
TABLE_PATH = ("context", "annotations")

SCHEMA = pa.schema([
    ("annotation_id", pa.string()),
    ("starts_at", pa.timestamp("us")),
    ("ends_at", pa.timestamp("us")),
    ("scope", pa.string()),
    ("scope_value", pa.string()),
    ("kind", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("link", pa.string()),
    ("created_at", pa.timestamp("us")),
])


class AnnotationError(ValueError):
    """An annotation that cannot be recorded: the field, and why."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class Annotation:
    starts_at: datetime
    kind: str
    text: str
    source: str
    ends_at: datetime | None = None
    scope: str = "all"
    scope_value: str | None = None
    link: str | None = None
    annotation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: utc_naive(datetime.now(UTC)))

    @property
    def last_moment(self) -> datetime:
        return self.ends_at or self.starts_at

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def platform_id(*parts: object) -> str:
    """A stable id for an annotation the platform writes about `parts`."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def parse_time(value: Any, field_name: str) -> datetime:
    """ISO-8601 (a `Z` or an offset; naive is UTC), as the warehouse's naive UTC."""
    if isinstance(value, datetime):
        return utc_naive(value)
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(field_name, "must be an ISO-8601 time, e.g. 2026-11-20T10:15:00Z")
    try:
        moment = utc_naive(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise AnnotationError(field_name, f"{value!r} is not an ISO-8601 time") from None
    if not EARLIEST <= moment <= LATEST:
        raise AnnotationError(field_name, f"{value!r} is not between {EARLIEST:%Y} and "
                                          f"{LATEST:%Y}")
    return moment


@dataclass(frozen=True)
class KnownScopes:
    """The scenario ids and services of scenarios.csv (lower-cased), to refuse unknown ones."""

    scenarios: frozenset[str]
    services: frozenset[str]

    @classmethod
    def from_reference(cls, reference_dir: Path) -> "KnownScopes":
        path = reference_dir / "scenarios.csv"
        if not path.exists():
            return cls(frozenset(), frozenset())
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        return cls(frozenset((row.get("scenario_id") or "").strip().lower() for row in rows),
                   frozenset((row.get("service") or "").strip().lower() for row in rows))


def parse_scope(text: str, known: KnownScopes | None) -> tuple[str, str | None]:
    """`all`, `service:NAME`, `scenario:ID` or `partner:ID`."""
    kind, _, value = (text or "").strip().partition(":")
    kind, value = kind.strip().lower(), value.strip()
    if kind not in SCOPES:
        raise AnnotationError("scope", f"unknown scope {text!r}: one of all, service:NAME, "
                                       "scenario:ID, partner:ID")
    if kind == "all":
        if value:
            raise AnnotationError("scope", "`all` takes no value")
        return kind, None
    if not value:
        raise AnnotationError("scope", f"`{kind}` needs a value, e.g. {kind}:checkout")
    if len(value) > MAX_SCOPE_CHARS:
        raise AnnotationError("scope", f"the value is longer than {MAX_SCOPE_CHARS} characters")
    # Partners need not be in customers.csv: traffic names partners the reference does not.
    if known is not None and kind in ("scenario", "service"):
        names = known.scenarios if kind == "scenario" else known.services
        if value.lower() not in names:
            raise AnnotationError("scope", f"unknown {kind} {value!r} (not in scenarios.csv)")
    return kind, value


def build(fields: Mapping[str, Any], source: str, known: KnownScopes | None,
          now: datetime | None = None) -> Annotation:
    """An annotation from what a person gave (the JSON body, or the CLI's options), checked."""
    unknown = set(fields) - {"start", "end", "scope", "kind", "text", "link"}
    if unknown:
        raise AnnotationError(sorted(unknown)[0], "unknown field")
    starts_at = (parse_time(fields["start"], "start") if fields.get("start") is not None
                 else utc_naive(now or datetime.now(UTC)))
    ends_at = parse_time(fields["end"], "end") if fields.get("end") is not None else None
    if ends_at is not None and ends_at < starts_at:
        raise AnnotationError("end", f"ends at {ends_at:%Y-%m-%d %H:%M:%S}, before it starts "
                                     f"({starts_at:%Y-%m-%d %H:%M:%S} UTC)")
    scope, scope_value = parse_scope(str(fields.get("scope") or "all"), known)
    kind = fields.get("kind", "note")
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        raise AnnotationError("kind", "must be a lower-case word of at most 40 characters "
                                      "(letters, digits, - and _), e.g. deploy")
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise AnnotationError("text", "is required")
    if len(text) > MAX_TEXT_CHARS:
        raise AnnotationError("text", f"is {len(text):,} characters; at most "
                                      f"{MAX_TEXT_CHARS:,}")
    link = fields.get("link")
    if link is not None:
        if not isinstance(link, str) or not re.match(r"https?://\S+$", link):
            raise AnnotationError("link", "must be an http(s) URL")
        if len(link) > MAX_LINK_CHARS:
            raise AnnotationError("link", f"is longer than {MAX_LINK_CHARS:,} characters")
    return Annotation(starts_at=starts_at, ends_at=ends_at, scope=scope,
                      scope_value=scope_value, kind=kind, text=text.strip(),
                      source=source[:MAX_SOURCE_CHARS], link=link)


def note(lake_dir: Path, annotations: Iterable[Annotation], log: logging.Logger) -> None:
    """Record the platform's own annotations as a side effect that never fails its caller: a
    publication, a sensor tick or a webhook matters more than its note on a chart."""
    try:
        AnnotationStore(lake_dir).add(annotations)
    except Exception:  # any failure of a note is logged, never raised
        log.exception("could not record the platform's annotations in %s", lake_dir)


class AnnotationStore:
    """The annotations of a lake (its root folder)."""

    def __init__(self, lake_dir: Path):
        self.table = RecordedTable(
            lake_dir, *TABLE_PATH, SCHEMA, key=lambda row: (row["annotation_id"],),
            day_of=lambda row: row["starts_at"].date(),
            order=lambda row: (row["starts_at"], row["created_at"], row["annotation_id"]))

    def day_path(self, day: date) -> Path:
        return self.table.day_path(day)

    def add(self, annotations: Iterable[Annotation]) -> list[Annotation]:
        """Record the annotations whose ids are new; returns those."""
        return [Annotation(**row) for row in self.table.add(a.as_row() for a in annotations)]

    def between(self, start: datetime, end: datetime,
                looked_back: timedelta = timedelta(days=7)) -> list[Annotation]:
        """The annotations that overlap [start, end): started before `end` and not over before
        `start` (ranges that began up to `looked_back` earlier included), oldest first."""
        start, end = utc_naive(start), utc_naive(end)
        rows = self.table.read_days((start - looked_back).date(), end.date())
        # A range is half-open, [starts_at, ends_at); a moment is in [start, end).
        return [Annotation(**row) for row in rows
                if row["starts_at"] < end and (row["ends_at"] > start if row["ends_at"]
                                               else row["starts_at"] >= start)]
