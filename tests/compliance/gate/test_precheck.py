"""Pre-checking many contacts at once answers as one check at a time would, and stores each."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import PlannedContact
from recoup.contact.channels import Channel
from recoup.models.compliance import ContactDecision, ContactWindow, WindowKind
from recoup.models.contact import ContactAttempt
from tests.compliance.gate.checks import check, local
from tests.factories import make_account, make_debtor, make_institution


def test_a_batch_decides_as_single_checks_and_reserves_nothing(session: Session) -> None:
    institution = make_institution(session)
    plain = make_debtor(session, institution)
    ceased = make_debtor(session, institution)
    ceased.cease_contact = True
    disputed = make_debtor(session, institution)
    disputed.disputed = True
    busy = make_debtor(session, institution)
    session.add(
        ContactWindow(
            institution_id=institution.id,
            debtor_id=busy.id,
            kind=WindowKind.inconvenient,
            start_minute=9 * 60,
            end_minute=11 * 60,
        )
    )
    debtors = [plain, ceased, disputed, busy]
    accounts = {debtor.id: make_account(session, debtor) for debtor in debtors}
    session.flush()
    at = local(2025, 3, 3, 10)
    # One call already made today to the plain debtor counts against the batch's call.
    for _ in range(3):
        check(session, plain, at - timedelta(hours=1))
    single = {debtor.id: check(session, debtor, at, reserve=False).decision for debtor in debtors}
    decisions_before = session.scalar(select(func.count()).select_from(ContactDecision))
    attempts_before = session.scalar(select(func.count()).select_from(ContactAttempt))

    batch = gate_service.precheck_contacts(
        session,
        institution=institution,
        attempts=[
            PlannedContact(
                debtor_id=str(debtor.id),
                channel=Channel.CALL,
                at=at,
                account_id=str(accounts[debtor.id].id),
            )
            for debtor in debtors
        ],
        actor="cycle",
    )

    assert [answer.decision.allowed for answer in batch] == [
        single[debtor.id].allowed for debtor in debtors
    ]
    assert [answer.decision.rule_ids for answer in batch] == [
        single[debtor.id].rule_ids for debtor in debtors
    ]
    assert not any(answer.decision.allowed for answer in batch)
    stored = session.scalar(select(func.count()).select_from(ContactDecision))
    assert stored == decisions_before + len(debtors)
    assert session.scalar(select(func.count()).select_from(ContactAttempt)) == attempts_before
    row = session.get_one(ContactDecision, batch[1].decision_id)
    assert (row.debtor_id, row.allowed, row.inputs["reserve"]) == (ceased.id, False, False)
