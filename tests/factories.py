"""Small typed factories for test data."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.institutions.service import create_institution
from recoup.kit.clock import LAST_YEAR, utcnow
from recoup.kit.crypto import blind_index
from recoup.models import Account, ContactPoint, Debtor, Institution, User
from recoup.models.cases import Case, CaseAccount
from recoup.models.scoring import ModelVersion
from recoup.portfolio.repository import account_owners
from recoup.portfolio.rules import bucket_for

_counter = itertools.count(1)


def make_institution(
    session: Session,
    *,
    code: str | None = None,
    jurisdiction: str = "CN",
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
    preset: str = "consumer_finance",
) -> Institution:
    return create_institution(
        session,
        code=code or f"INST{next(_counter)}",
        name="Test Lender",
        jurisdiction=jurisdiction,
        timezone=timezone,
        currency=currency,
        preset=preset,
    )


def make_debtor(
    session: Session,
    institution: Institution,
    *,
    external_id: str | None = None,
    name: str = "张伟",
    national_id: str | None = "110101199003074477",
    timezone: str | None = None,
) -> Debtor:
    debtor = Debtor(
        institution_id=institution.id,
        external_id=external_id or f"D{next(_counter)}",
        name=name,
        name_index=blind_index(name, context="debtors.name"),
        national_id=national_id,
        national_id_index=blind_index(national_id, context="debtors.national_id")
        if national_id
        else None,
        id_kind="resident_id" if national_id else None,
        timezone=timezone or institution.timezone,
    )
    session.add(debtor)
    session.flush()
    return debtor


def make_contact_point(
    session: Session,
    debtor: Debtor,
    *,
    value: str = "13812345678",
    kind: str = "mobile",
    relation: str = "self",
    status: str = "valid",
) -> ContactPoint:
    contact = ContactPoint(
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        external_id=f"C{next(_counter)}",
        kind=kind,
        value=value,
        value_index=blind_index(value, context="contact_points.value"),
        relation=relation,
        third_party=relation != "self",
        status=status,
    )
    session.add(contact)
    session.flush()
    return contact


def make_account(
    session: Session,
    debtor: Debtor,
    *,
    external_id: str | None = None,
    principal: int = 1_000_000,
    interest: int = 50_000,
    fees: int = 10_000,
    penalty: int = 5_000,
    days_past_due: int = 45,
    due_date: date | None = None,
    status: str = "delinquent",
) -> Account:
    account = Account(
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        external_id=external_id or f"A{next(_counter)}",
        product="consumer_loan",
        currency="CNY",
        principal=principal,
        interest=interest,
        fees=fees,
        penalty=penalty,
        minimum_due=principal // 10,
        overdue_amount=principal // 10,
        due_date=due_date,
        days_past_due=days_past_due,
        bucket=bucket_for(days_past_due),
        status=status,
    )
    session.add(account)
    session.flush()
    return account


def certify(
    session: Session,
    user: User,
    *,
    issued_on: date = date(2000, 1, 1),
    expires_on: date = date(LAST_YEAR, 12, 31),
) -> None:
    """Give an agent a compliance certificate (by default valid on any day a test runs at)."""
    from recoup.compliance.certifications.service import grant_certification

    assert user.institution_id is not None
    grant_certification(
        session,
        institution_id=user.institution_id,
        user_id=user.id,
        course="collections compliance",
        issued_on=issued_on,
        expires_on=expires_on,
        actor="test",
    )


def give_to_agent(session: Session, account: Account, agent: User | int | None) -> Case:
    """Put an account in its debtor's live case (opening one) and give the case to ``agent``."""
    session.flush()
    case = session.scalar(
        select(Case).where(
            Case.institution_id == account.institution_id,
            Case.live_debtor_id == account.debtor_id,
        )
    )
    if case is None:
        case = Case(
            institution_id=account.institution_id,
            debtor_id=account.debtor_id,
            live_debtor_id=account.debtor_id,
            state="open",
            opened_at=utcnow(),
        )
        session.add(case)
        session.flush()
    member = session.scalar(
        select(CaseAccount).where(
            CaseAccount.case_id == case.id, CaseAccount.account_id == account.id
        )
    )
    if member is None:
        session.add(
            CaseAccount(
                institution_id=account.institution_id,
                case_id=case.id,
                account_id=account.id,
                added_at=utcnow(),
            )
        )
    case.owner_id = agent.id if isinstance(agent, User) else agent
    session.flush()
    return case


def agent_of(session: Session, account: Account) -> int | None:
    """The agent working an account: its live case's owner."""
    session.flush()
    return account_owners(session, account_ids=[account.id])[account.id]


def make_model_version(
    session: Session, institution_id: int, *, version: str, trained_at: datetime | None = None
) -> ModelVersion:
    """Register a scorecard model version with no artefact (for scores written by hand)."""
    model = ModelVersion(
        version=version,
        institution_id=institution_id,
        family="scorecard",
        source="test",
        target="pays",
        positive_label="1",
        features=[],
        metrics={},
        data_fingerprint="0" * 64,
        trained_by="test",
        trained_at=trained_at or datetime(2026, 1, 1, tzinfo=UTC),
        artifact_sha256="0" * 64,
        artifact_size=0,
    )
    session.add(model)
    session.flush()
    return model
