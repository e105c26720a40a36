"""A small portfolio for workspace tests: an agent's cases with phones, at a fixed daytime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases
from recoup.models import Institution, User
from recoup.models.account import Account
from recoup.models.cases import Case
from recoup.models.debtor import ContactPoint, Debtor
from tests.factories import certify, make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import make_user

# A Monday, 11:00 in Shanghai: calling hours everywhere in the CN pack.
DAYTIME = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
# 23:30 in Shanghai: outside calling hours.
NIGHT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


@dataclass
class Desk:
    institution: Institution
    agent: User
    colleague: User
    lead: User
    debtors: list[Debtor]
    accounts: list[Account]
    phones: list[ContactPoint]
    cases: list[Case]


def make_desk(session: Session, *, count: int = 3) -> Desk:
    """An institution with an agent owning ``count`` cases (priority falling) and a colleague's."""
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    colleague = make_user(session, institution, role="agent")
    lead = make_user(session, institution, role="team_lead")
    for user in (agent, colleague):
        certify(session, user)
    debtors, accounts, phones = [], [], []
    for number in range(count + 1):
        debtor = make_debtor(session, institution)
        debtors.append(debtor)
        accounts.append(make_account(session, debtor, days_past_due=40 + number))
        phones.append(make_contact_point(session, debtor, value=f"1381234{number:04}"))
    cases.sync_cases(session, institution_id=institution.id)
    found = []
    for number, debtor in enumerate(debtors):
        case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
        case.owner_id = agent.id if number < count else colleague.id
        case.priority = 100 - number
        found.append(case)
    session.flush()
    return Desk(institution, agent, colleague, lead, debtors, accounts, phones, found)
