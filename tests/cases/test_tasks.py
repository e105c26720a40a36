"""Cases follow imports and payments through background jobs, and an hourly sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recoup.db import unit_of_work
from recoup.ingest.runner import run_import
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.models.cases import Case
from recoup.models.jobs import Job, JobStatus
from tests.factories import make_institution

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture
def database(memory_jobs: str) -> str:
    """A live database with jobs kept in memory."""
    return memory_jobs


def _count(model: type) -> int:
    with unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _sync_jobs() -> list[tuple[str, str]]:
    with unit_of_work(write=False) as session:
        rows = session.execute(
            select(Job.idempotency_key, Job.status).where(Job.name == "cases.sync")
        )
        return [(key, str(status)) for key, status in rows]


def test_an_accounts_import_opens_cases_through_a_job(database: str) -> None:
    with unit_of_work() as session:
        make_institution(session, code="SYNC")
    for kind in ("debtors", "accounts"):
        with unit_of_work() as session:
            run_import(session, institution_code="SYNC", kind=kind, path=EXAMPLES / f"{kind}.csv")
    assert len(_sync_jobs()) == 1
    assert _count(Case) == 0
    # The job waits for the minute to end, so the changes of that minute are all in.
    jobs.drain(now=utcnow() + timedelta(minutes=3))
    assert [status for _, status in _sync_jobs()] == [JobStatus.done]
    assert _count(Case) > 0


def test_changes_within_a_minute_share_one_job(database: str) -> None:
    moment = datetime(2027, 3, 1, 2, 0, 10, tzinfo=UTC)
    with unit_of_work() as session:
        institution = make_institution(session)
        for seconds in (0, 20, 45):
            jobs.enqueue_soon(
                session,
                "cases.sync",
                {"institution_id": institution.id},
                coalesce=f"cases.sync@{institution.id}",
                now=moment + timedelta(seconds=seconds),
            )
        later = jobs.enqueue_soon(
            session,
            "cases.sync",
            {"institution_id": institution.id},
            coalesce=f"cases.sync@{institution.id}",
            now=moment + timedelta(seconds=55),
        )
    assert len(_sync_jobs()) == 2
    assert later.available_at == datetime(2027, 3, 1, 2, 2, tzinfo=UTC)


def test_the_hourly_sync_covers_every_institution(database: str) -> None:
    with unit_of_work() as session:
        make_institution(session)
        make_institution(session)
    huey = jobs.get_huey()
    due = huey.read_periodic(datetime(2027, 3, 1, 6, 5))
    assert "schedule:cases.sync_all" in [task.name for task in due]
    assert "schedule:cases.sync_all" not in [
        task.name for task in huey.read_periodic(datetime(2027, 3, 1, 6, 6))
    ]
    for task in due:
        if task.name == "schedule:cases.sync_all":
            huey.execute(task)
    jobs.drain()
    assert len(_sync_jobs()) == 2
    assert {status for _, status in _sync_jobs()} == {JobStatus.done}
