"""Statements issued as frozen versions: `<lake>/statements/month=YYYY-MM/partner=<id>/vN/`
holding statement.json, statement.html, statement.csv and (when Chromium printed it)
statement.pdf.

A version is written whole in a hidden temporary folder beside its siblings and renamed into
place. rename(2) of a folder onto a folder that exists and is not empty fails (a version folder
is never empty), so of two issuers that both computed vN+1 exactly one gets it; the other reads
the winner, and issues nothing when its figures are equal or vN+2 stating its difference from
the winner's when not. A version folder, once there, is never written again.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dagster import TimeWindow

from telemetry_assets.lake import Lake
from telemetry_assets.sla.figures import (
    Statement,
    compute_statements,
    month_inputs,
    processed_hours,
)
from telemetry_assets.sla.render import render_csv, render_html, render_pdf
from telemetry_core.durable import ensure_dir, fsync_dir
from telemetry_core.slos import SloCatalog

STATEMENTS_DIR = "statements"
JSON, HTML, CSV, PDF = "statement.json", "statement.html", "statement.csv", "statement.pdf"
FILES = (JSON, HTML, CSV, PDF)
_VERSION = re.compile(r"v([1-9][0-9]*)")
# Figures a revision note states old → new for every scenario that changed.
NOTED = ("attainment_pct", "total_requests", "credit_pct")
# A lost race is retried with the next number; more losses than this in a row is a fault.
MAX_ATTEMPTS = 50
# Reading a month whose files keep being rewritten is tried this often before giving up.
MAX_READS = 5
# Partners' statements issued at once.
ISSUERS = 2

PdfPrinter = Callable[[Path, Path], str | None]


class InputsChanged(RuntimeError):
    """The month's lake files changed during every read: no statement could be tied to them."""


def statements_root(lake: Lake) -> Path:
    return lake.root / STATEMENTS_DIR


def partner_dir(root: Path, month: str, partner_id: str) -> Path:
    # Escaped, a partner id is one folder name whatever it holds ('/', '..', '%').
    return root / f"month={month}" / f"partner={quote(partner_id, safe='')}"


def versions(directory: Path) -> list[int]:
    """The version numbers issued in a partner's month folder, ascending."""
    try:
        names = [entry.name for entry in os.scandir(directory) if entry.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(int(found.group(1)) for name in names if (found := _VERSION.fullmatch(name)))


def read_document(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / JSON).read_text(encoding="utf-8"))


def catalog_identity(catalog: SloCatalog) -> dict[str, Any]:
    """The objectives file the catalog came from, its digest, and the credit schedule."""
    source = catalog.source
    digest = None
    if source is not None and Path(source).is_file():
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return {
        "source": str(Path(source).absolute()) if source is not None else None,
        "sha256": digest,
        "credits": [{"below_pct": step.below_pct, "credit_pct": step.credit_pct}
                    for step in sorted(catalog.credits, key=lambda step: -step.below_pct)],
    }


@dataclass(frozen=True)
class IssueContext:
    """What every statement of a run carries besides its figures."""

    run_id: str | None
    issued_at: datetime
    catalog: dict[str, Any]
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Issued:
    """One partner's statement after issuing: a new version, or the latest one unchanged."""

    month: str
    partner_id: str
    version: int
    directory: Path
    new: bool
    document: dict[str, Any]

    @property
    def status(self) -> str:
        return "issued" if self.new else "unchanged"

    @property
    def pdf_error(self) -> str | None:
        return self.document["pdf"]["reason"]

    def files(self) -> dict[str, Path]:
        return {name: self.directory / name for name in FILES if (self.directory / name).is_file()}


def revision(previous: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """What changed since the previous version: per scenario old → new of NOTED, and which of
    the statement's own figures changed."""
    old = {line["scenario_id"]: line for line in previous["figures"]["scenarios"]}
    new = {line["scenario_id"]: line for line in figures["scenarios"]}
    scenarios = []
    for scenario_id in sorted(old.keys() | new.keys()):
        before, after = old.get(scenario_id), new.get(scenario_id)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        entry: dict[str, Any] = {"scenario_id": scenario_id, "change": change}
        for name in NOTED:
            entry[name] = [(before or {}).get(name), (after or {}).get(name)]
        entry["also_changed"] = sorted(
            name for name in (before or after or {})
            if name not in NOTED and before and after and before[name] != after[name])
        scenarios.append(entry)
    was = previous["figures"]
    statement = [{"figure": name, "old": was.get(name), "new": value}
                 for name, value in figures.items()
                 if name != "scenarios" and was.get(name) != value]
    return {
        "previous_version": previous["version"],
        "previous_issued_at": previous["issued_at"],
        "statement": statement,
        "scenarios": scenarios,
    }


def _document(statement: Statement, version: int, previous: dict[str, Any] | None,
              context: IssueContext) -> dict[str, Any]:
    figures = json.loads(json.dumps(statement.figures()))
    return {
        "kind": "sla_statement",
        "month": statement.month,
        "partner_id": statement.partner_id,
        "version": version,
        "status": "preliminary" if statement.preliminary else "final",
        "issued_at": f"{context.issued_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z",
        "run_id": context.run_id,
        "figures": figures,
        "revision": revision(previous, figures) if previous else None,
        "maintenance": [
            {"start": f"{w.start:%Y-%m-%dT%H:%M:%S}Z", "end": f"{w.end:%Y-%m-%dT%H:%M:%S}Z",
             "scenarios": w.scenarios, "partners": w.partners, "reason": w.reason}
            for w in statement.maintenance
        ],
        "catalog": context.catalog,
        "inputs": context.inputs,
        "files": {"html": HTML, "csv": CSV, "pdf": None},
        "pdf": {"rendered": False, "reason": None},
    }


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(temporary: Path, target: Path) -> bool:
    """Rename the finished version into place; False when another issuer took the number."""
    try:
        os.rename(temporary, target)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


def issue(statement: Statement, root: Path, context: IssueContext,
          pdf: PdfPrinter | None = render_pdf) -> Issued:
    """Issue the statement: nothing new when the latest version states the same figures, else
    the next version, whole, with its difference from the latest."""
    directory = partner_dir(root, statement.month, statement.partner_id)
    ensure_dir(directory)
    figures = json.loads(json.dumps(statement.figures()))
    for _ in range(MAX_ATTEMPTS):
        latest = max(versions(directory), default=0)
        previous = read_document(directory / f"v{latest}") if latest else None
        if previous is not None and previous["figures"] == figures:
            return Issued(statement.month, statement.partner_id, latest,
                          directory / f"v{latest}", False, previous)
        version = latest + 1
        document = _document(statement, version, previous, context)
        temporary = directory / f".v{version}-{uuid.uuid4().hex}.tmp"
        temporary.mkdir()
        try:
            _write(temporary / HTML, render_html(document))
            _write(temporary / CSV, render_csv(document))
            reason = ("PDF printing is off for this issue" if pdf is None
                      else pdf(temporary / HTML, temporary / PDF))
            if reason is None:
                with open(temporary / PDF, "rb") as printed:
                    os.fsync(printed.fileno())
                document["files"]["pdf"] = PDF
            document["pdf"] = {"rendered": reason is None, "reason": reason}
            _write(temporary / JSON, json.dumps(document, indent=2, sort_keys=False) + "\n")
            fsync_dir(temporary)
            if _publish(temporary, directory / f"v{version}"):
                fsync_dir(directory)
                return Issued(statement.month, statement.partner_id, version,
                              directory / f"v{version}", True, document)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    raise RuntimeError(f"{directory}: lost the race for a new version {MAX_ATTEMPTS} times")


def issue_month(
    lake: Lake,
    catalog: SloCatalog,
    month: str,
    window: TimeWindow,
    *,
    run_id: str | None,
    now: datetime,
    catalog_json: dict[str, Any] | None = None,
    partners: Collection[str] = (),
    pdf: PdfPrinter | None = render_pdf,
) -> list[Issued]:
    """Compute the month's statements and issue each; every one records the identities of the
    lake files it was computed from, read before and after the figures so that a file rewritten
    meanwhile is never left out of the record."""
    for _ in range(MAX_READS):
        before = month_inputs(lake, processed_hours(lake, window))
        statements = compute_statements(lake, catalog, month, window, now, partners)
        if month_inputs(lake, processed_hours(lake, window)) == before:
            break
    else:
        raise InputsChanged(f"the lake files of {month} changed during each of {MAX_READS} "
                            "reads: run the statement again once the pipeline is quiet")
    context = IssueContext(run_id, now, catalog_json or catalog_identity(catalog),
                           before.as_json())
    root = statements_root(lake)
    # Most of an issue is Chromium printing, on about one core: two at once keep two busy.
    with ThreadPoolExecutor(max_workers=ISSUERS, thread_name_prefix="statement") as pool:
        return list(pool.map(lambda statement: issue(statement, root, context, pdf), statements))


@dataclass(frozen=True)
class IssuedVersion:
    """One version as the listing shows it."""

    month: str
    partner_id: str
    partner_name: str | None
    version: int
    issued_at: str
    status: str
    directory: Path
    files: tuple[str, ...]
    pdf_reason: str | None


def _matches(value: str, wanted: str | None) -> bool:
    return wanted is None or value.strip().lower() == wanted.strip().lower()


def issued_versions(root: Path, month: str | None = None,
                    partner: str | None = None) -> list[IssuedVersion]:
    """Every version issued (of `month`, of `partner` matched like the events, when given):
    newest month first, then by partner, newest version first."""
    found = []
    for month_dir in sorted(root.glob("month=*"), reverse=True):
        if month is not None and month_dir.name != f"month={month}":
            continue
        for directory in sorted(month_dir.glob("partner=*")):
            for version in reversed(versions(directory)):
                version_dir = directory / f"v{version}"
                try:
                    document = read_document(version_dir)
                except (OSError, ValueError):
                    continue
                if not _matches(document["partner_id"], partner):
                    continue
                found.append(IssuedVersion(
                    month=document["month"], partner_id=document["partner_id"],
                    partner_name=document["figures"]["partner_name"], version=version,
                    issued_at=document["issued_at"], status=document["status"],
                    directory=version_dir,
                    files=tuple(name for name in FILES if (version_dir / name).is_file()),
                    pdf_reason=document["pdf"]["reason"],
                ))
    return found
