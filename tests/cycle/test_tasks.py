"""The cycle as a job: due at the institution's cycle time, run in the job's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from recoup.cycle import rules, service
from recoup.db import unit_of_work
from recoup.institutions.settings import settings_of
from recoup.kit import jobs
from recoup.models.cycle import CycleRun
from recoup.models.jobs import Job
from tests.cycle.helpers import portfolio, today_of


@pytest.fixture
def database(memory_jobs: str) -> str:
    """A live database with jobs kept in memory."""
    return memory_jobs


class TestDueDay:
    def test_due_from_the_cycle_time_on(self) -> None:
        morning = datetime(2027, 3, 1, 5, 59)
        assert rules.due_day(time(6), morning) is None
        assert rules.due_day(time(6), morning + timedelta(minutes=1)).isoformat() == "2027-03-01"

    def test_never_without_a_cycle_time(self) -> None:
        assert rules.due_day(None, datetime(2027, 3, 1, 23, 0)) is None


def test_the_due_cycle_is_asked_for_once_and_runs_as_a_job(database: str) -> None:
    with unit_of_work() as session:
        institution = portfolio(session)
        assert settings_of(institution).cycle.run_at == time(6)  # the consumer-finance preset
        # Due from midnight, so the job finds it due whatever the time of the test run.
        institution.settings = {**institution.settings, "cycle": {"run_at": "00:00"}}
        day = today_of(institution)
    local_noon = datetime.combine(day, time(12), tzinfo=UTC) - timedelta(hours=8)

    with unit_of_work() as session:
        due = service.due_runs(session, now=local_noon)
        assert [(each.code, when) for each, when in due] == [("CYC", day)]
    for _ in range(2):
        with unit_of_work() as session:
            jobs.enqueue(session, "cycle.start_due", {}, idempotency_key=None)
        jobs.drain()

    with unit_of_work(write=False) as session:
        run = session.execute(select(CycleRun)).scalar_one()
        assert (run.as_of, run.status, run.actor) == (day, "completed", "system")
        assert run.tasks_created + run.messages_queued == 5
        names = session.execute(select(Job.name).where(Job.name == "cycle.run")).scalars().all()
        assert names == ["cycle.run"]
    with unit_of_work() as session:
        assert service.due_runs(session, now=local_noon) == []
