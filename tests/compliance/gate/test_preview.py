"""The gate's read-only preview: the same answer as a check, nothing stored, locked or claimed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate
from recoup.contact import service as contact
from recoup.contact.channels import Channel
from recoup.contact.rules import ConsentKind, Party
from recoup.models.compliance import ContactDecision, SlotClaim
from recoup.models.contact import ContactAttempt
from tests.factories import make_contact_point, make_debtor, make_institution

DAY = datetime(2026, 12, 7, 3, tzinfo=UTC)  # Monday 11:00 in Shanghai
NIGHT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai


def _rows(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (ContactDecision, SlotClaim, ContactAttempt)
    )


def test_a_preview_answers_like_a_check_and_stores_nothing(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    phone = make_contact_point(session, debtor)
    other = make_contact_point(session, debtor, value="13900001111")
    contact.record_consent(
        session, contact_point=other, channel=Channel.SMS, kind=ConsentKind.OPT_OUT, actor="t"
    )
    before = _rows(session)
    day = gate.preview_contacts(
        session,
        institution=institution,
        debtor=debtor,
        targets=[
            gate.PreviewTarget(Channel.CALL, phone),
            gate.PreviewTarget(Channel.SMS, phone),
            gate.PreviewTarget(Channel.SMS, other),
        ],
        at=DAY,
    )
    assert [decision.allowed for decision in day] == [True, True, False]
    night = gate.preview_contacts(
        session,
        institution=institution,
        debtor=debtor,
        targets=[gate.PreviewTarget(Channel.CALL, phone)],
        at=NIGHT,
    )[0]
    assert _rows(session) == before
    checked = gate.check_contact(
        session,
        institution_id=institution.id,
        debtor_id=debtor.id,
        contact_point_id=phone.id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        at=NIGHT,
        actor="t",
    )
    assert (night.allowed, night.next_allowed_at, night.rule_ids) == (
        checked.decision.allowed,
        checked.decision.next_allowed_at,
        checked.decision.rule_ids,
    )


def test_many_debtors_are_previewed_at_once(session: Session) -> None:
    institution = make_institution(session)
    calm, ceased = make_debtor(session, institution), make_debtor(session, institution)
    ceased.cease_contact = True
    session.flush()
    before = _rows(session)
    found = gate.preview_debtors(
        session,
        institution=institution,
        debtor_ids=[calm.id, ceased.id],
        channel=Channel.CALL,
        at=DAY,
    )
    assert found[calm.id].allowed
    assert not found[ceased.id].allowed
    assert found[ceased.id].next_allowed_at is None
    assert _rows(session) == before
