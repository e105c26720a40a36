"""Cases owned by an agent, with phones and addresses, for the outreach tests."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases_service
from recoup.identity import service as identity_service
from recoup.models import Debtor, Institution, User
from recoup.models.cases import Case
from tests.factories import certify, make_account, make_contact_point, make_debtor
from tests.identity.helpers import make_user


@dataclass
class Portfolio:
    """An institution's certified agent and the debtors whose cases the agent owns."""

    agent: User
    debtors: list[Debtor]
    cases: list[Case]


def owned_cases(
    session: Session,
    institution: Institution,
    *,
    count: int = 2,
    places: list[tuple[str, str]] | None = None,
    phones: bool = True,
    addresses: bool = False,
) -> Portfolio:
    """Open ``count`` cases owned by one certified agent (debtors with a phone and/or address)."""
    agent = make_user(session, institution, role="agent")
    certify(session, agent)
    debtors = []
    for index in range(count):
        debtor = make_debtor(session, institution)
        if places:
            debtor.city, debtor.district = places[index % len(places)]
        if phones:
            make_contact_point(session, debtor, value=f"1381234{index:04d}")
        if addresses:
            make_contact_point(
                session,
                debtor,
                kind="address",
                value=f"{debtor.city or ''}{debtor.district or ''}1号",
            )
        make_account(session, debtor, days_past_due=40 + index)
        debtors.append(debtor)
    cases_service.sync_cases(session, institution_id=institution.id)
    cases = []
    for debtor in debtors:
        case = session.execute(
            select(Case).where(Case.institution_id == institution.id, Case.debtor_id == debtor.id)
        ).scalar_one()
        case.owner_id = agent.id
        cases.append(case)
    session.flush()
    return Portfolio(agent=agent, debtors=debtors, cases=cases)


def api_key(session: Session, institution: Institution, *scopes: str) -> dict[str, str]:
    """Return the header of a new API key of the institution with ``scopes``."""
    plaintext, _key = identity_service.create_api_key(
        session, institution_id=institution.id, name="dialer", scopes=list(scopes), actor="t"
    )
    return {"X-API-Key": plaintext}
