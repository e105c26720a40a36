"""Helpers for import tests: example files and small hostile files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from recoup.enums import ImportKind, ImportStatus
from recoup.ingest.runner import ImportSummary, run_import
from recoup.kit.clock import utcnow
from recoup.models import Institution
from recoup.models.ingest import ImportRun
from tests.factories import make_institution

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
KINDS_IN_ORDER = ("debtors", "contacts", "accounts", "payments")

DEBTORS_HEADER = "external_id,name,national_id,province,city"
ACCOUNTS_HEADER = "external_id,debtor_external_id,product,principal,interest,days_past_due"


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session)


def write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def load(
    session: Session, institution: Institution, kind: str, path: Path, **options: object
) -> ImportSummary:
    return run_import(session, institution_code=institution.code, kind=kind, path=path, **options)  # type: ignore[arg-type]


def load_examples(
    session: Session, institution: Institution, folder: Path
) -> dict[str, ImportSummary]:
    """Copy the documented examples into ``folder`` and import them in order."""
    summaries = {}
    for kind in KINDS_IN_ORDER:
        path = write(folder, f"{kind}.csv", (EXAMPLES / f"{kind}.csv").read_bytes())
        summaries[kind] = load(session, institution, kind, path)
    return summaries


def running_import(
    session: Session,
    institution: Institution,
    *,
    silent_for: timedelta,
    now: datetime | None = None,
    kind: ImportKind = ImportKind.debtors,
) -> ImportRun:
    """Add an import of ``kind`` started an hour ago, still running, whose last heartbeat was
    ``silent_for`` ago."""
    now = now or utcnow()
    run = ImportRun(
        institution_id=institution.id,
        kind=kind,
        file_name=f"{kind.value}.csv",
        file_format="csv",
        status=ImportStatus.running,
        actor="cli",
        started_at=now - timedelta(hours=1),
        updated_at=now - silent_for,
        reject_counts={},
        ignored_columns=[],
    )
    session.add(run)
    session.flush()
    return run
