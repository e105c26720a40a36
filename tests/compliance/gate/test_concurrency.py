"""Parallel requests for the last allowed call slot: exactly one may win, and losers are blocked.

On PostgreSQL a row lock (and the unique slot key) decide; on SQLite write transactions begin
IMMEDIATE, so contenders queue for the one write lock and each sees the earlier winner.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from recoup.compliance.gate import repository as gate_repository
from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.db import session_factory
from recoup.models import Debtor, Institution
from recoup.models.compliance import ContactDecision, SlotClaim
from recoup.models.contact import ContactAttempt
from tests.factories import make_debtor

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 3, tzinfo=UTC)
PARALLEL = 6


@pytest.fixture
def last_slot(engine: Engine) -> Iterator[tuple[int, int]]:
    """A committed debtor who already has two of three calls for the day."""
    with Session(engine) as session:
        institution = Institution(
            code=f"RACE{uuid.uuid4().hex[:8]}",
            name="Race Lender",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="commercial_bank",
            settings={},
        )
        session.add(institution)
        session.flush()
        debtor = make_debtor(session, institution)
        for hour in (9, 10):
            gate_service.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                channel=Channel.CALL,
                party=Party.DEBTOR,
                at=datetime(2025, 3, 3, hour, tzinfo=SHANGHAI),
                actor="setup",
                now=NOW,
            )
        session.commit()
        ids = (institution.id, debtor.id)
    yield ids
    with Session(engine) as session:
        for model in (SlotClaim, ContactAttempt, ContactDecision, Debtor):
            session.execute(delete(model).where(model.institution_id == ids[0]))
        session.execute(delete(Institution).where(Institution.id == ids[0]))
        session.commit()


def _race(engine: Engine, institution_id: int, debtor_id: int) -> list[bool]:
    barrier = threading.Barrier(PARALLEL)
    results: list[bool] = []
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            barrier.wait()
            with session_factory(engine)() as session:
                checked = gate_service.check_contact(
                    session,
                    institution_id=institution_id,
                    debtor_id=debtor_id,
                    channel=Channel.CALL,
                    party=Party.DEBTOR,
                    at=datetime(2025, 3, 3, 15, tzinfo=SHANGHAI),
                    actor="racer",
                    now=NOW,
                )
                session.commit()
                results.append(checked.decision.allowed)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=contender) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


class TestLastSlot:
    def test_row_lock_lets_exactly_one_win(
        self, engine: Engine, last_slot: tuple[int, int]
    ) -> None:
        results = _race(engine, *last_slot)
        assert sorted(results) == [False] * (PARALLEL - 1) + [True]

    def test_unique_slot_key_alone_lets_exactly_one_win(
        self, engine: Engine, last_slot: tuple[int, int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Without the row lock every contender sees the slot free; the unique key decides.
        monkeypatch.setattr(gate_repository, "lock_debtor", lambda *args, **kwargs: None)
        results = _race(engine, *last_slot)
        assert sorted(results) == [False] * (PARALLEL - 1) + [True]
