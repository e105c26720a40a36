"""A small portfolio for the daily cycle's tests."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from recoup.kit import clock
from recoup.models import Institution
from tests.factories import make_account, make_debtor, make_institution


def today_of(institution: Institution) -> date:
    return clock.local_today(institution.timezone)


def portfolio(session: Session, *, code: str = "CYC", debtors: int = 6) -> Institution:
    """An institution whose debtors each owe one account 40 days overdue (as of today);

    the last debtor asked for no more contact, so the gate blocks every contact with them.
    """
    institution = make_institution(session, code=code)
    today = today_of(institution)
    for number in range(debtors):
        debtor = make_debtor(session, institution, external_id=f"{code}-D{number}")
        if number == debtors - 1:
            debtor.cease_contact = True
        make_account(
            session,
            debtor,
            external_id=f"{code}-A{number}",
            principal=200_000 * (number + 1),
            days_past_due=25,
            due_date=today - timedelta(days=40),
        )
    session.flush()
    return institution
