"""Tampering with one audit row is detected at that row (service and ``recoup audit verify``)."""

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.audit import service as audit
from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.models import AuditEvent

COLUMNS = (
    "sequence",
    "institution_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "occurred_at",
    "details",
    "previous_hash",
    "hash",
)


def _chain(session: Session, length: int = 6) -> list[AuditEvent]:
    events = [
        audit.record(
            session,
            actor="alice",
            action="payment.record",
            object_type="payment",
            object_id=n,
            details={"amount": n * 100},
        )
        for n in range(1, length + 1)
    ]
    session.flush()
    return events


def _row(session: Session, sequence: int) -> AuditEvent:
    return session.scalars(select(AuditEvent).where(AuditEvent.sequence == sequence)).one()


def _swap(session: Session, first: AuditEvent, second: AuditEvent) -> None:
    """Swap the stored contents of two rows, keeping their row ids (a reorder)."""
    a: dict[str, Any] = {column: getattr(first, column) for column in COLUMNS}
    b: dict[str, Any] = {column: getattr(second, column) for column in COLUMNS}
    session.execute(update(AuditEvent).where(AuditEvent.id == first.id).values(sequence=-1))
    session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(**a))
    session.execute(update(AuditEvent).where(AuditEvent.id == first.id).values(**b))
    session.expire_all()


class TestVerify:
    def test_an_intact_chain(self, session: Session) -> None:
        _chain(session)
        assert audit.verify(session) == (6, None)

    def test_an_altered_detail_is_found_at_that_row(self, session: Session) -> None:
        events = _chain(session)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[2].id).values(details={"amount": 1})
        )
        session.expire_all()
        _checked, broken = audit.verify(session)
        assert broken is not None
        assert (broken.row_id, broken.sequence) == (events[2].id, 3)
        assert "altered" in broken.reason

    def test_an_altered_actor_is_found(self, session: Session) -> None:
        events = _chain(session)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[0].id).values(actor="mallory")
        )
        session.expire_all()
        broken = audit.verify(session)[1]
        assert broken is not None
        assert broken.sequence == 1

    def test_a_deleted_row_is_found_where_it_was(self, session: Session) -> None:
        events = _chain(session)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
        session.expire_all()
        broken = audit.verify(session)[1]
        assert broken is not None
        assert (broken.row_id, broken.sequence) == (events[3].id, 4)
        assert "3 was expected" in broken.reason

    def test_reordered_rows_are_found_at_the_first_of_them(self, session: Session) -> None:
        events = _chain(session)
        _swap(session, _row(session, 3), _row(session, 4))
        broken = audit.verify(session)[1]
        assert broken is not None
        assert broken.row_id == events[2].id
        assert "reordered" in broken.reason

    def test_a_deleted_last_row_is_found_at_the_head(self, session: Session) -> None:
        events = _chain(session)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
        session.expire_all()
        broken = audit.verify(session)[1]
        assert broken is not None
        assert "head records event 6" in broken.reason


class TestVerifyCommand:
    def test_ok_then_broken(self, cli_db: str) -> None:
        with unit_of_work() as session:
            events = _chain(session, 4)
            target = events[1].id
        ok = CliRunner().invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "OK: 4 audit events verified" in ok.output
        with unit_of_work() as session:
            session.execute(
                update(AuditEvent).where(AuditEvent.id == target).values(details={"amount": 0})
            )
        broken = CliRunner().invoke(cli, ["audit", "verify"])
        assert broken.exit_code == 1
        assert f"BROKEN at event 2 (row id {target})" in broken.output
        assert "altered" in broken.output
