"""Promise service on both backends: record, cancel, reconcile (counts, re-runs, windows)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.kit.errors import Conflict, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.audit import AuditEvent
from recoup.models.workbench import Promise, PromiseStatus
from recoup.workbench import service
from recoup.workbench.rules import PromiseTerms
from tests.factories import make_account, make_debtor, make_institution
from tests.workbench.helpers import add_payment, add_promise

PROMISED = date(2026, 3, 1)
DUE = date(2026, 3, 10)
AFTER_GRACE = DUE + timedelta(days=4)


def _at(day: date, hour: int = 4) -> datetime:
    """An instant on a Shanghai calendar day (UTC+8)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _audits(session: Session, action: str) -> int:
    statement = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    return int(session.execute(statement).scalar_one())


def test_record_promise_checks_and_audits(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    terms = PromiseTerms(amount=20_000, currency="CNY", due_date=DUE, channel="call")
    promise = service.record_promise(
        session,
        institution=institution,
        account=account,
        terms=terms,
        actor="agent1",
        note="  pays after payday ",
        today=PROMISED,
    )
    assert promise.status == PromiseStatus.pending
    assert promise.promised_on == PROMISED
    assert promise.debtor_id == account.debtor_id
    assert promise.note == "pays after payday"
    assert _audits(session, "promise.record") == 1

    with pytest.raises(Conflict, match="cancel it"):
        service.record_promise(
            session,
            institution=institution,
            account=account,
            terms=terms,
            actor="agent1",
            today=PROMISED,
        )
    with pytest.raises(ValidationFailed) as failed:
        service.record_promise(
            session,
            institution=institution,
            account=account,
            terms=PromiseTerms(amount=0, currency="USD", due_date=DUE, channel="call"),
            actor="agent1",
            today=PROMISED,
        )
    fields = {error["field"] for error in failed.value.extra["errors"]}
    assert fields == {"amount", "currency", "account_id"}

    service.cancel_promise(session, institution=institution, promise=promise, actor="agent1")
    assert str(promise.status) == "cancelled"
    assert promise.resolved_at is not None
    assert _audits(session, "promise.cancel") == 1
    with pytest.raises(Conflict, match="only a pending promise"):
        service.cancel_promise(session, institution=institution, promise=promise, actor="agent1")
    second = service.record_promise(
        session, institution=institution, account=account, terms=terms, actor="a", today=PROMISED
    )
    page = service.account_promises(
        session, institution_id=institution.id, account_id=account.id, page=PageRequest(1, 10)
    )
    assert page.total == 2
    assert page.items[0].id == second.id


def test_reconcile_counts_and_is_idempotent(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    kept, partial, broken, early_only, waiting = (make_account(session, debtor) for _ in range(5))
    promises = {
        name: add_promise(session, account, amount=10_000, promised_on=PROMISED, due_date=DUE)
        for name, account in {
            "kept": kept,
            "partial": partial,
            "broken": broken,
            "early_only": early_only,
        }.items()
    }
    waiting_promise = add_promise(
        session, waiting, amount=10_000, promised_on=PROMISED, due_date=AFTER_GRACE + timedelta(3)
    )
    add_payment(session, kept, amount=6_000, paid_at=_at(PROMISED))
    add_payment(session, kept, amount=4_000, paid_at=_at(DUE + timedelta(days=3)))  # grace day
    add_payment(session, partial, amount=2_500, paid_at=_at(DUE))
    add_payment(session, partial, amount=9_000, paid_at=_at(AFTER_GRACE))  # too late
    # Before the promise was made: does not count toward it.
    add_payment(session, early_only, amount=50_000, paid_at=_at(PROMISED - timedelta(days=1)))
    # Another institution's promise with a payment stays untouched.
    other = make_institution(session)
    other_account = make_account(session, make_debtor(session, other))
    other_promise = add_promise(
        session, other_account, amount=100, promised_on=PROMISED, due_date=DUE
    )
    add_payment(session, other_account, amount=100, paid_at=_at(DUE))

    result = service.reconcile_promises(
        session, institution=institution, as_of=AFTER_GRACE, actor="test"
    )
    assert result.counts() == {
        "examined": 5,
        "kept": 1,
        "partially_kept": 1,
        "broken": 2,
        "pending": 1,
        "escalated": 0,
    }
    session.expire_all()
    assert promises["kept"].status == PromiseStatus.kept
    assert promises["kept"].paid_amount == 10_000
    assert promises["kept"].resolved_at is not None
    assert promises["partial"].status == PromiseStatus.partially_kept
    assert promises["partial"].paid_amount == 2_500
    assert promises["broken"].status == PromiseStatus.broken
    assert promises["early_only"].status == PromiseStatus.broken
    assert promises["early_only"].paid_amount == 0
    assert waiting_promise.status == PromiseStatus.pending
    assert other_promise.status == PromiseStatus.pending
    assert _audits(session, "promise.reconcile") == 1

    again = service.reconcile_promises(
        session, institution=institution, as_of=AFTER_GRACE, actor="test"
    )
    assert again.counts() == {
        "examined": 1,
        "kept": 0,
        "partially_kept": 0,
        "broken": 0,
        "pending": 1,
        "escalated": 0,
    }
    assert _audits(session, "promise.reconcile") == 1  # nothing changed, nothing to audit


def test_a_full_payment_keeps_a_promise_before_its_due_date(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    promise = add_promise(session, account, amount=10_000, promised_on=PROMISED, due_date=DUE)
    add_payment(session, account, amount=4_000, paid_at=_at(PROMISED + timedelta(days=1)))

    early = service.reconcile_promises(
        session, institution=institution, as_of=PROMISED + timedelta(days=2), actor="test"
    )
    assert early.pending == 1
    session.expire_all()
    assert promise.status == PromiseStatus.pending
    assert promise.paid_amount == 4_000  # progress is kept on the pending promise

    add_payment(session, account, amount=6_000, paid_at=_at(PROMISED + timedelta(days=3)))
    # A payment dated after the as-of date does not count yet.
    assert (
        service.reconcile_promises(
            session, institution=institution, as_of=PROMISED + timedelta(days=2), actor="t"
        ).kept
        == 0
    )
    result = service.reconcile_promises(
        session, institution=institution, as_of=PROMISED + timedelta(days=3), actor="test"
    )
    assert result.kept == 1
    session.expire_all()
    assert str(promise.status) == "kept"


def test_the_window_follows_the_institution_calendar(session: Session) -> None:
    institution = make_institution(session)  # Asia/Shanghai, UTC+8
    inside, outside = (make_account(session, make_debtor(session, institution)) for _ in "ab")
    last_grace_day = DUE + timedelta(days=3)
    for account in (inside, outside):
        add_promise(session, account, amount=1_000, promised_on=PROMISED, due_date=DUE)
    # 23:59 local on the last grace day counts; midnight local the next day does not.
    add_payment(
        session,
        inside,
        amount=1_000,
        paid_at=datetime.combine(last_grace_day, datetime.min.time(), UTC)
        + timedelta(hours=15, minutes=59),
    )
    add_payment(
        session,
        outside,
        amount=1_000,
        paid_at=datetime.combine(last_grace_day, datetime.min.time(), UTC) + timedelta(hours=16),
    )
    result = service.reconcile_promises(
        session, institution=institution, as_of=AFTER_GRACE + timedelta(days=5), actor="test"
    )
    assert (result.kept, result.broken) == (1, 1)


def test_two_broken_promises_in_a_row_escalate(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    repeat, recovered = make_account(session, debtor), make_account(session, debtor)
    earlier = datetime(2026, 2, 1, tzinfo=UTC)
    add_promise(
        session,
        repeat,
        amount=5_000,
        promised_on=date(2026, 1, 10),
        due_date=date(2026, 1, 20),
        status=PromiseStatus.broken,
        resolved_at=earlier,
    )
    add_promise(
        session,
        recovered,
        amount=5_000,
        promised_on=date(2026, 1, 10),
        due_date=date(2026, 1, 20),
        status=PromiseStatus.broken,
        resolved_at=earlier,
    )
    add_promise(
        session,
        recovered,
        amount=5_000,
        promised_on=date(2026, 1, 22),
        due_date=date(2026, 1, 25),
        status=PromiseStatus.kept,
        resolved_at=earlier,
    )
    for account in (repeat, recovered):
        add_promise(session, account, amount=5_000, promised_on=PROMISED, due_date=DUE)
    result = service.reconcile_promises(
        session, institution=institution, as_of=AFTER_GRACE, actor="test"
    )
    assert result.broken == 2
    assert result.escalated_account_ids == (repeat.id,)
    total = session.execute(
        select(func.count()).select_from(Promise).where(Promise.status == PromiseStatus.broken)
    ).scalar_one()
    assert total == 4
