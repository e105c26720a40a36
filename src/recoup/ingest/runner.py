"""Run one file import end to end: the transaction boundary of imports, committing per chunk.

Why per chunk, not once: a million-row file in one transaction would hold the write
lock for minutes (SQLite) and keep every change pending until the end. Each chunk is
consistent on its own — its rows, their delinquency events and its rejects commit
together — and the upsert by (institution, external id) makes running the same file
again after an interruption safe: what was committed counts as unchanged.

A file that cannot be used at all (unreadable, wrong format, missing required columns)
raises ``UnusableFile`` before any row is written; the failed run is still recorded.
A CSV that breaks part-way (e.g. a field over the CSV size limit) stops there, saying how
many rows were committed.

A run is ``running`` only while its process lives: each chunk's commit is its heartbeat.
An import stopped in-process (Ctrl-C, SIGTERM, an error) records itself as interrupted or
failed; one whose process vanished (``kill -9``, a lost machine) shows as interrupted once
its heartbeat is older than ``IMPORT_HEARTBEAT_TIMEOUT``, and the institution's next
import records it so.
"""

from __future__ import annotations

import csv
import gc
import os
import sqlite3
import time
import traceback
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.enums import ImportKind, ImportStatus
from recoup.ingest.pipeline import checked_chunks
from recoup.ingest.readers import Source, UnusableFile, open_source
from recoup.ingest.rules import neutralise_formula
from recoup.ingest.service import (
    CheckedChunk,
    ImportState,
    check_chunk,
    interrupt_silent_runs,
    row_context,
    write_chunk,
)
from recoup.institutions.repository import require_by_code
from recoup.kit import collector, jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.portfolio.service import follow_up_payments

CHUNK_SIZE = 5_000
# About 60,000 account rows: below this, starting a reader process costs more than it saves.
PIPELINE_MIN_BYTES = 8 * 2**20
SQLITE_CACHE_KIB = 64 * 1024
# About 200 MiB of WAL at SQLite's 4 KiB pages.
SQLITE_IMPORT_CHECKPOINT_PAGES = 50_000
REPORT_COLUMNS = ("row", "field", "value", "reason", "code")

# After an accounts import, the cases domain's job opens and closes cases.
CASES_SYNC = "cases.sync"


@dataclass
class ImportSummary:
    """What an import did, for the summary table and for scripts."""

    run_id: int
    kind: str
    file_name: str
    file_format: str
    encoding: str | None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reject_counts: Counter[str] = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    reject_report: Path | None = None
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


def default_report_path(path: Path) -> Path:
    """Return where the reject report of ``path`` goes unless told otherwise."""
    return path.with_name(path.name + ".rejects.csv")


class _RejectReport:
    """The reject report CSV, created at the first reject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._writer is None:
            # UTF-8 with BOM, so Excel opens the Chinese reasons correctly.
            self._handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(REPORT_COLUMNS)
        self._writer.writerows(
            [
                row["row_number"],
                neutralise_formula(row["field"]),
                neutralise_formula(row["value"]),
                neutralise_formula(row["reason"]),
                row["code"],
            ]
            for row in rows
        )

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def run_import(
    session: Session,
    *,
    institution_code: str,
    kind: str,
    path: Path,
    file_format: str | None = None,
    encoding: str | None = None,
    reject_report: Path | None = None,
    chunk_size: int = CHUNK_SIZE,
    actor: str = "cli",
    now: datetime | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    pipeline: bool | None = None,
) -> ImportSummary:
    """Import ``path`` as ``kind`` rows of an institution, committing per chunk.

    ``pipeline`` reads and checks the file in a second process while this one writes;
    by default only for files of ``PIPELINE_MIN_BYTES`` or more on a multi-core machine,
    as starting that process costs about a second.
    """
    if kind not in ImportKind.__members__:
        raise ValidationFailed(f"unknown import kind {kind!r}: use one of {', '.join(ImportKind)}")
    import_kind = ImportKind(kind)
    started = time.perf_counter()
    institution = require_by_code(session, institution_code)
    started_at = now or utcnow()
    try:
        source = open_source(path, kind=import_kind, file_format=file_format, encoding=encoding)
    except UnusableFile as error:
        _record_failure(session, institution, import_kind, path, actor, started_at, error.message)
        raise
    with source, _tuned_connection(session):
        interrupt_silent_runs(session, institution=institution)
        run = ImportRun(
            institution_id=institution.id,
            kind=import_kind,
            file_name=path.name[:255],
            file_format=source.file_format,
            encoding=source.encoding,
            status=ImportStatus.running,
            actor=actor,
            started_at=started_at,
            ignored_columns=source.ignored_columns,
            reject_counts={},
        )
        session.add(run)
        session.commit()
        summary = ImportSummary(
            run_id=run.id,
            kind=import_kind,
            file_name=path.name,
            file_format=source.file_format,
            encoding=source.encoding,
            ignored_columns=source.ignored_columns,
        )
        state = ImportState(
            run=run,
            institution=institution,
            kind=import_kind,
            context=row_context(institution, now=now),
        )
        report = _RejectReport(reject_report or default_report_path(path))
        try:
            if pipeline is None:
                pipeline = path.stat().st_size >= PIPELINE_MIN_BYTES and (os.cpu_count() or 1) > 1
            if pipeline:
                chunks: Generator[tuple[CheckedChunk, int]] = checked_chunks(
                    path=path,
                    kind=import_kind,
                    file_format=file_format,
                    encoding=encoding,
                    context=state.context,
                    chunk_size=chunk_size,
                    ignored_columns=source.ignored_columns,
                )
            else:
                chunks = _checked_here(source, state, chunk_size)
            with closing(chunks), _collector_per_chunk() as collect:
                for checked, position in chunks:
                    result = write_chunk(session, state=state, chunk=checked)
                    report.write(result.reject_rows)
                    summary.rows_read += result.rows_read
                    summary.inserted += result.inserted
                    summary.updated += result.updated
                    summary.unchanged += result.unchanged
                    summary.rejected += result.rejected
                    summary.reject_counts.update(result.reject_counts())
                    _copy_counts(run, summary)
                    run.updated_at = utcnow()  # the run's heartbeat
                    session.commit()
                    collect()
                    if on_progress is not None:
                        on_progress(position, source.size, summary.rows_read)
        except UnusableFile as error:
            session.rollback()
            message = (
                f"{error.message}. The {summary.rows_read} rows before it were committed "
                f"(run {run.id}); "
                "fix the file and import it again — rows already imported count as unchanged"
            )
            _finish(session, run, summary, ImportStatus.failed, message)
            raise UnusableFile(message) from None
        except BaseException as error:
            _record_stop(session, run, summary, error)
            raise
        finally:
            report.close()
        summary.reject_report = report.path if report.written else None
        summary.ignored_columns = list(source.ignored_columns)
        _finish(session, run, summary, ImportStatus.completed, None)
    summary.seconds = time.perf_counter() - started
    return summary


def _checked_here(
    source: Source, state: ImportState, chunk_size: int
) -> Generator[tuple[CheckedChunk, int]]:
    """Read and check chunks in this process: small files, or a single core."""
    while chunk := list(islice(source.rows, chunk_size)):
        yield check_chunk(state=state, rows=chunk), source.position()


@contextmanager
def _collector_per_chunk() -> Iterator[Callable[[], object]]:
    """Run Python's cycle collector once per chunk instead of by allocation counts.

    An import allocates a few objects per field of every row; left to its thresholds the
    collector kept walking every long-lived object of the process (the ORM, the models)
    and took about a quarter of the writing time. Paused, it collects the young
    generations after each chunk; its thresholds apply again once the import ends.
    """
    with collector.paused():
        yield lambda: gc.collect(1)


@contextmanager
def _tuned_connection(session: Session) -> Iterator[None]:
    """Tune an SQLite import connection for bulk writes while the import runs.

    A page cache that holds the indexes the import updates, and WAL checkpoints every
    ``SQLITE_IMPORT_CHECKPOINT_PAGES`` instead of every 1,000 pages: each checkpoint
    copies the hot index pages into the database file again and syncs it, about a tenth
    of an import's time. The checkpoint interval is restored afterwards (the next commit
    past it checkpoints the import's pages once). Other connections are not touched.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    # 64 MiB instead of SQLite's 2 MiB default: a million-row upsert otherwise rereads
    # index pages from the OS cache for every chunk. Per connection, so harmless elsewhere.
    connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    previous = int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
    connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_IMPORT_CHECKPOINT_PAGES}")
    # The driver connection itself, so the setting is restored whatever state the
    # session is left in by an error.
    driver = connection.connection.driver_connection
    try:
        yield
    finally:
        # A stop signal in the middle of a statement makes SQLAlchemy close the connection
        # (the setting went with it): nothing to restore, and the stop must not be masked.
        with suppress(sqlite3.ProgrammingError):
            if driver is not None:
                driver.execute(f"PRAGMA wal_autocheckpoint={previous}")


def _copy_counts(run: ImportRun, summary: ImportSummary) -> None:
    run.rows_read = summary.rows_read
    run.inserted = summary.inserted
    run.updated = summary.updated
    run.unchanged = summary.unchanged
    run.rejected = summary.rejected
    run.reject_counts = dict(summary.reject_counts)


def _finish(
    session: Session,
    run: ImportRun,
    summary: ImportSummary,
    status: ImportStatus,
    message: str | None,
) -> None:
    _copy_counts(run, summary)
    run.status = status
    run.message = message
    run.finished_at = utcnow()
    run.ignored_columns = list(summary.ignored_columns)
    if status is ImportStatus.completed and run.kind is ImportKind.payments:
        follow_up_payments(session, institution_id=run.institution_id)
    elif status is ImportStatus.completed and run.kind is ImportKind.accounts:
        jobs.enqueue_soon(
            session,
            CASES_SYNC,
            {"institution_id": run.institution_id},
            coalesce=f"{CASES_SYNC}@{run.institution_id}",
            institution_id=run.institution_id,
        )
    audit.record(
        session,
        actor=run.actor,
        action="import.run",
        object_type="import_run",
        object_id=run.id,
        institution_id=run.institution_id,
        details={
            "kind": str(run.kind),
            "file_name": run.file_name,
            "status": str(status),
            "rows_read": summary.rows_read,
            "inserted": summary.inserted,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "rejected": summary.rejected,
        },
    )
    session.commit()


def _record_stop(
    session: Session, run: ImportRun, summary: ImportSummary, error: BaseException
) -> None:
    """Record that an import stopped part-way, unless the database itself is what failed."""
    # Ctrl-C, SIGTERM (the CLI turns it into SystemExit) and the like are not the file's fault.
    stopped = not isinstance(error, Exception)
    # A statement cut off by a signal keeps SQLite's write lock until it is finalised, and
    # its cursor lives on in the traceback's frames (the collector is paused for imports).
    traceback.clear_frames(error.__traceback__)
    gc.collect()
    reason = "The import was stopped" if stopped else f"The import failed: {error!r}"[:300]
    try:
        session.rollback()
        # The counts of the chunks that were committed, not of the one in flight.
        summary.rows_read, summary.inserted, summary.updated = (
            run.rows_read,
            run.inserted,
            run.updated,
        )
        summary.unchanged, summary.rejected = run.unchanged, run.rejected
        summary.reject_counts = Counter(run.reject_counts)
        message = (
            f"{reason}. The {summary.rows_read} rows before it were committed (run {run.id}); "
            "import the file again — rows already imported count as unchanged"
        )
        status = ImportStatus.interrupted if stopped else ImportStatus.failed
        _finish(session, run, summary, status, message)
    except Exception:
        # The error being raised says more than this one; the run shows as interrupted
        # once its heartbeat is old.
        session.rollback()


def _record_failure(
    session: Session,
    institution: Institution,
    kind: ImportKind,
    path: Path,
    actor: str,
    started_at: datetime,
    message: str,
) -> None:
    run = ImportRun(
        institution_id=institution.id,
        kind=kind,
        file_name=path.name[:255],
        file_format=path.suffix.lstrip(".").lower()[:8] or "?",
        encoding=None,
        status=ImportStatus.failed,
        actor=actor,
        started_at=started_at,
        finished_at=utcnow(),
        message=message,
        reject_counts={},
        ignored_columns=[],
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="import.run",
        object_type="import_run",
        object_id=run.id,
        institution_id=institution.id,
        details={"kind": str(kind), "file_name": run.file_name, "status": "failed"},
    )
    session.commit()
