"""The KPI snapshot counted in a worker process stores what one process stores.

The daily cycle's aggregates stage counts the KPI snapshot in a worker process while its own
process writes the daily aggregates (``counting_beside``). On a database both processes open
(a SQLite file, PostgreSQL), the stored snapshots and agent cohorts must not change: a first
refresh (the whole month counted) and a daily one (brought forward from yesterday's), on the
month's last day (which also stores the next month's snapshot).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recoup.analytics import service as kpi_service
from recoup.analytics.daily import service
from recoup.db import unit_of_work
from recoup.models.analytics import AggregateRefresh, DailyFact, KpiSnapshot
from tests.analytics.conftest import March
from tests.factories import give_to_agent
from tests.identity.helpers import make_user

NOW = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 April in Shanghai


@pytest.fixture
def session(live_database: str) -> Iterator[Session]:
    """The March portfolio's session (``march``), on a live database, committing for real."""
    with unit_of_work() as live:
        yield live


def _stored(session: Session, institution_id: int) -> dict[str, Any]:
    snapshots = session.execute(
        select(KpiSnapshot.period_start, KpiSnapshot.as_of, KpiSnapshot.facts)
        .where(KpiSnapshot.institution_id == institution_id)
        .order_by(KpiSnapshot.period_start)
    ).all()
    columns = (
        DailyFact.day,
        DailyFact.metric,
        DailyFact.agent_id,
        DailyFact.bucket,
        DailyFact.count,
        DailyFact.amount,
    )
    rows = session.execute(
        select(*columns).where(DailyFact.institution_id == institution_id).order_by(*columns)
    ).all()
    return {"snapshots": [tuple(row) for row in snapshots], "rows": [tuple(row) for row in rows]}


def _refresh_twice(session: Session, march: March, workers: int) -> dict[str, Any]:
    institution = march.institution
    for day in (date(2026, 3, 30), date(2026, 3, 31)):
        service.refresh_aggregates(
            session, institution=institution, as_of=day, now=NOW, workers=workers
        )
        session.commit()
    return _stored(session, institution.id)


# What the worker's spy writes to and calls (a worker runs a function named in its module).
SPIED: dict[str, Any] = {}


def _spy(*args: Any) -> Any:
    with SPIED["pids"].open("a") as out:
        out.write(f"{os.getpid()}\n")
    return SPIED["count"](*args)


def _failing(*_args: Any) -> Any:
    raise RuntimeError("the worker's disk is gone")


def test_counted_in_a_worker_is_stored_as_counted_here(
    session: Session, march: March, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_user(session, march.institution)
    for owned in (march.a, march.b, march.c):
        give_to_agent(session, owned, agent)
    session.commit()
    here = _refresh_twice(session, march, workers=0)
    assert [row[:2] for row in here["snapshots"]] == [
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 3, 31)),
    ]
    assert any(row[1] == "agent_balance" and row[2] == agent.id for row in here["rows"])

    for model in (KpiSnapshot, DailyFact, AggregateRefresh):
        session.execute(delete(model).where(model.institution_id == march.institution.id))
    session.commit()
    # The count runs in another process (a forked copy of this one: the spy goes with it).
    pids = tmp_path / "pids"
    monkeypatch.setitem(SPIED, "pids", pids)
    monkeypatch.setitem(SPIED, "count", kpi_service._count_in_worker)
    monkeypatch.setattr(kpi_service, "_count_in_worker", _spy)
    assert _refresh_twice(session, march, workers=1) == here
    seen = pids.read_text().split()
    assert len(seen) == 2
    assert str(os.getpid()) not in seen
    assert multiprocessing.active_children() == []


def test_a_failed_count_fails_the_refresh_and_writes_nothing(
    session: Session, march: March, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kpi_service, "_count_in_worker", _failing)
    with pytest.raises(RuntimeError, match="disk is gone"):
        service.refresh_aggregates(
            session, institution=march.institution, as_of=date(2026, 3, 31), now=NOW, workers=1
        )
    session.rollback()
    assert _stored(session, march.institution.id) == {"snapshots": [], "rows": []}
    assert multiprocessing.active_children() == []
