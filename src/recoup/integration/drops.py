"""The scheduled file drop: import the CSV/XLSX files put in an institution's drop folder.

This is a transaction boundary like ``ingest.runner`` (which it calls): each file's import
commits per chunk. A scan, for one institution:

1. lists the drop folder; files still being written (a ``.part``/``.tmp``… name, or changed
   less than ``integration.drop_settle_seconds`` ago) wait for the next scan;
2. claims each ready file by moving it into ``processing/`` (an atomic rename: two workers
   never import the same file);
3. imports it with the file import pipeline as the kind its name starts with (debtors,
   contacts, accounts, payments; in that order), unless a file with the same SHA-256 was
   imported before (the ledger ``processed/.recoup-imported.tsv``);
4. moves it to ``processed/`` (every row imported, or a duplicate) or ``rejected/`` (some
   rows refused, or the file unusable), prefixed with the scan's UTC time, with a report
   ``<file>.report.txt`` naming the rows, their fields and the fixes (and the import's
   ``<file>.rejects.csv`` when rows were refused).

A file left in ``processing/`` by a worker that died is put back after ``STUCK_AFTER``:
imports are idempotent (rows already written count as unchanged), so importing it again
is safe.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from recoup.config import get_settings
from recoup.enums import ImportKind
from recoup.ingest.readers import UnusableFile
from recoup.ingest.runner import ImportSummary, run_import
from recoup.institutions.settings import settings_of
from recoup.integration import rules
from recoup.kit.clock import utcnow
from recoup.kit.errors import RecoupError
from recoup.models.institution import Institution

logger = logging.getLogger("recoup.drops")

PROCESSING = "processing"
PROCESSED = "processed"
REJECTED = "rejected"
LEDGER = ".recoup-imported.tsv"
STUCK_AFTER = timedelta(hours=1)
REPORT_ROWS = 50
ACTOR = "drop"


@dataclass(frozen=True, slots=True)
class DropOutcome:
    """What a scan did with one file."""

    name: str
    kind: str | None
    status: str  # imported | partly_rejected | rejected | duplicate
    moved_to: Path
    report: Path
    run_id: int | None = None


def folder_of(institution: Institution) -> Path:
    """The institution's drop folder: ``drop_folder`` (or its code) inside the drop root."""
    root = get_settings().drop_root
    assert root is not None  # filled by the settings
    relative = settings_of(institution).integration.drop_folder or institution.code
    return root / relative


def scan(
    session: Session, *, institution: Institution, now: datetime | None = None
) -> list[DropOutcome]:
    """Import the ready files of the institution's drop folder; return what became of each."""
    now = now or utcnow()
    folder = folder_of(institution)
    for sub in ("", PROCESSING, PROCESSED, REJECTED):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    _put_back_stuck(folder, now=now)
    settle = settings_of(institution).integration.drop_settle_seconds
    found = [
        rules.DropFile(entry.name, stat.st_size, max(stat.st_mtime, stat.st_ctime))
        for entry in os.scandir(folder)
        if entry.is_file(follow_symlinks=False) and (stat := entry.stat(follow_symlinks=False))
    ]
    planned = rules.plan(found, now=now.timestamp(), settle_seconds=settle)
    outcomes = [_refuse_name(folder, file.name, now=now) for file in planned.unknown]
    for file, kind in planned.ready:
        claimed = folder / PROCESSING / file.name
        try:
            os.rename(folder / file.name, claimed)
        except FileNotFoundError:
            continue  # another worker took it
        outcomes.append(_import_one(session, institution, folder, claimed, kind, now=now))
    return outcomes


def _put_back_stuck(folder: Path, *, now: datetime) -> None:
    for entry in os.scandir(folder / PROCESSING):
        if not entry.is_file() or entry.name.endswith(".rejects.csv"):
            continue
        if now.timestamp() - entry.stat().st_ctime >= STUCK_AFTER.total_seconds():
            logger.warning("putting back %s, left in processing by a stopped import", entry.path)
            os.replace(entry.path, folder / entry.name)


def checksum(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ledger(folder: Path) -> dict[str, str]:
    path = folder / PROCESSED / LEDGER
    if not path.exists():
        return {}
    seen: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, rest = line.partition("\t")
        if digest:
            seen[digest] = rest
    return seen


def _remember(folder: Path, digest: str, name: str, run_id: int, at: datetime) -> None:
    line = f"{digest}\t{name}\trun {run_id}\t{at.isoformat(timespec='seconds')}\n"
    with (folder / PROCESSED / LEDGER).open("a", encoding="utf-8") as ledger:
        ledger.write(line)


def _import_one(
    session: Session,
    institution: Institution,
    folder: Path,
    claimed: Path,
    kind: ImportKind,
    *,
    now: datetime,
) -> DropOutcome:
    name = claimed.name
    digest = checksum(claimed)
    earlier = _ledger(folder).get(digest)
    archived = rules.archived_name(name, now)
    header = [
        f"file: {name}",
        f"kind: {kind}",
        f"sha256: {digest}",
        f"scanned: {now.isoformat(timespec='seconds')}",
    ]
    if earlier is not None:
        lines = [
            *header,
            "status: duplicate, not imported again",
            f"the same content was imported before: {earlier.replace(chr(9), ', ')}",
        ]
        return _file_away(folder, claimed, PROCESSED, archived, lines, name, kind, "duplicate")
    rejects = claimed.with_name(name + ".rejects.csv")
    try:
        summary = run_import(
            session,
            institution_code=institution.code,
            kind=str(kind),
            path=claimed,
            reject_report=rejects,
            actor=ACTOR,
            now=now,
            pipeline=False,
        )
    except (UnusableFile, RecoupError) as error:
        message = error.message
        lines = [
            *header,
            "status: rejected, nothing imported"
            if "were committed" not in message
            else "status: rejected part-way",
            f"why: {message}",
            "fix the file and drop it again (rows already imported count as unchanged)",
        ]
        return _file_away(folder, claimed, REJECTED, archived, lines, name, kind, "rejected")
    _remember(folder, digest, name, summary.run_id, now)
    lines = [*header, *_summary_lines(summary)]
    if summary.rejected:
        lines += _reject_lines(rejects, archived)
        outcome = _file_away(
            folder,
            claimed,
            REJECTED,
            archived,
            lines,
            name,
            kind,
            "partly_rejected",
            summary.run_id,
        )
        if rejects.exists():
            os.replace(rejects, folder / REJECTED / f"{archived}.rejects.csv")
        return outcome
    return _file_away(
        folder, claimed, PROCESSED, archived, lines, name, kind, "imported", summary.run_id
    )


def _summary_lines(summary: ImportSummary) -> list[str]:
    status = "imported" if not summary.rejected else "imported, some rows refused"
    lines = [
        f"status: {status} (import run {summary.run_id})",
        f"rows read: {summary.rows_read}; inserted {summary.inserted}, updated "
        f"{summary.updated}, unchanged {summary.unchanged}, refused {summary.rejected}",
    ]
    if summary.ignored_columns:
        lines.append(f"columns ignored: {', '.join(summary.ignored_columns)}")
    return lines


def _reject_lines(rejects: Path, archived: str) -> list[str]:
    lines = [
        "",
        f"refused rows (all of them in {archived}.rejects.csv); the valid rows are imported:",
    ]
    if not rejects.exists():
        return lines
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index == REPORT_ROWS:
                lines.append("…")
                break
            lines.append(f"row {row['row']}, {row['field']} = {row['value']!r}: {row['reason']}")
    lines.append("fix these rows and drop the file again; rows already imported count as unchanged")
    return lines


def _file_away(
    folder: Path,
    claimed: Path,
    where: str,
    archived: str,
    lines: list[str],
    name: str,
    kind: ImportKind | None,
    status: str,
    run_id: int | None = None,
) -> DropOutcome:
    target = folder / where / archived
    os.replace(claimed, target)
    report = folder / where / f"{archived}.report.txt"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("drop %s: %s → %s", name, status, target)
    return DropOutcome(name, str(kind) if kind else None, status, target, report, run_id)


def _refuse_name(folder: Path, name: str, *, now: datetime) -> DropOutcome:
    archived = rules.archived_name(name, now)
    source = folder / name
    lines = [f"file: {name}", "status: rejected, nothing imported", rules.unknown_reason(name)]
    return _file_away(folder, source, REJECTED, archived, lines, name, None, "rejected")
