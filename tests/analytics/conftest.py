"""A small hand-computed portfolio whose KPIs the tests know by heart.

March 2026 at a lender in Shanghai (amounts in fen):

| account | product | history | payments in March |
|---|---|---|---|
| A | credit card | M1 (10 dpd) 20 Feb, 10,000 → M0 10 Mar, 8,000 | 2,000 on 10 Mar |
| B | credit card | M2 (40 dpd) 15 Feb, 20,000 → M3 8 Mar | 5,000 on 20 Mar (partial) |
| C | consumer loan | M0 5 Jan, 30,000 → M1 5 Mar (placed) | 1,000 on 2 Mar, 3,000 on 25 Mar |
| D | consumer loan | charged off 31 Jan, 50,000 | 4,000 on 15 Mar (after charge-off) |
| E | consumer loan | M1 (20 dpd) 25 Feb, 6,000 → settled 12 Mar | 6,000 on 12 Mar |
| F | consumer loan | M0 1 Feb, 1,000 | — |

Promises: A's 2,000 due 10 Mar kept; B's 10,000 due 20 Mar partially kept (5,000); C's 3,000
made 25 Mar due 31 Mar still pending (grace days run into April); F's 500 due 28 Feb broken
(reconciled 4 Mar); E's 6,000 made 5 Mar due 2 Apr, kept on 12 Mar; one of C's cancelled.

Contacts made in March: a call to A (promise made, 3 Mar); calls to B (no answer 14 Mar, promise
made 15 Mar); a text to C (delivered, 20 Mar); a call about F's debtor as a whole (someone
else answered, 21 Mar). A planned, a cancelled and an inbound contact do not count.

Plus an account in US dollars and another lender's account, neither of which may count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy.orm import Session

from recoup.models import Account, Institution
from recoup.models.workbench import PromiseStatus
from tests.analytics.helpers import Outcome, account, attempt, pay, promise, state
from tests.factories import make_institution

MARCH_END = date(2026, 3, 31)


@dataclass
class March:
    institution: Institution
    a: Account
    b: Account
    c: Account
    d: Account
    e: Account
    f: Account
    other: Institution  # another lender, with an M1 account cured in March and 7,000 paid


@pytest.fixture
def march(session: Session) -> March:
    institution = make_institution(session, timezone="Asia/Shanghai")
    a = account(session, institution, product="credit_card")
    b = account(session, institution, product="credit_card", city="深圳市")
    c = account(session, institution, province="浙江省", city="杭州市")
    d = account(session, institution, province="浙江省", city="杭州市")
    e = account(session, institution)
    f = account(session, institution, province=None, city=None)

    state(session, a, date(2026, 2, 20), days_past_due=10, balance=10_000)
    state(session, a, date(2026, 3, 10), days_past_due=0, balance=8_000)
    pay(session, a, 2_000, date(2026, 3, 10))
    state(session, b, date(2026, 2, 15), days_past_due=40, balance=20_000)
    state(session, b, date(2026, 3, 8), days_past_due=61, balance=20_000)
    pay(session, b, 5_000, date(2026, 3, 20))
    state(session, c, date(2026, 1, 5), days_past_due=0, balance=30_000)
    state(session, c, date(2026, 3, 5), days_past_due=1, balance=30_000)
    pay(session, c, 1_000, date(2026, 3, 2))
    pay(session, c, 3_000, date(2026, 3, 25))
    state(session, d, date(2026, 1, 31), days_past_due=181, balance=50_000, status="charged_off")
    pay(session, d, 4_000, date(2026, 3, 15), status_before="charged_off")
    state(session, e, date(2026, 2, 25), days_past_due=20, balance=6_000)
    pay(session, e, 6_000, date(2026, 3, 12))
    state(session, e, date(2026, 3, 12), days_past_due=0, balance=0, status="settled")
    state(session, f, date(2026, 2, 1), days_past_due=0, balance=1_000)

    # Promises: due in March kept, partially kept, and one due on the 31st still in grace;
    # one due in February broken; one made in March due in April; one cancelled.
    promise(
        session,
        a,
        2_000,
        promised_on=date(2026, 3, 1),
        due_date=date(2026, 3, 10),
        outcome=Outcome(PromiseStatus.kept, date(2026, 3, 10), paid=2_000),
    )
    promise(
        session,
        b,
        10_000,
        promised_on=date(2026, 3, 15),
        due_date=date(2026, 3, 20),
        outcome=Outcome(PromiseStatus.partially_kept, date(2026, 3, 24), paid=5_000),
    )
    promise(session, c, 3_000, promised_on=date(2026, 3, 25), due_date=date(2026, 3, 31))
    promise(
        session,
        f,
        500,
        promised_on=date(2026, 2, 20),
        due_date=date(2026, 2, 28),
        outcome=Outcome(PromiseStatus.broken, date(2026, 3, 4)),
    )
    promise(
        session,
        e,
        6_000,
        promised_on=date(2026, 3, 5),
        due_date=date(2026, 4, 2),
        outcome=Outcome(PromiseStatus.kept, date(2026, 3, 12), paid=6_000),
    )
    promise(
        session,
        c,
        1_000,
        promised_on=date(2026, 3, 3),
        due_date=date(2026, 3, 4),
        outcome=Outcome(PromiseStatus.cancelled, date(2026, 3, 3)),
    )

    attempt(session, a, "call", "promise_made", date(2026, 3, 3))
    attempt(session, b, "call", "no_answer", date(2026, 3, 14))
    attempt(session, b, "call", "promise_made", date(2026, 3, 15))
    attempt(session, c, "sms", "message_delivered", date(2026, 3, 20))
    attempt(session, f, "call", "third_party", date(2026, 3, 21), about_the_debtor=True)
    attempt(session, f, "call", None, date(2026, 3, 30), status="planned")
    attempt(session, c, "call", None, date(2026, 3, 22), status="cancelled")
    attempt(session, a, "call", "right_party", date(2026, 3, 23), direction="inbound")
    attempt(session, a, "call", "right_party", date(2026, 4, 2))  # after the month

    # Neither of these may count: another currency, another lender.
    dollars = account(session, institution, currency="USD")
    state(session, dollars, date(2026, 2, 20), days_past_due=10, balance=99_000)
    pay(session, dollars, 500, date(2026, 3, 3))
    promise(session, dollars, 700, promised_on=date(2026, 3, 20), due_date=date(2026, 3, 25))
    attempt(session, dollars, "call", "right_party", date(2026, 3, 20))
    other = make_institution(session)
    theirs = account(session, other)
    state(session, theirs, date(2026, 2, 20), days_past_due=10, balance=77_000)
    state(session, theirs, date(2026, 3, 20), days_past_due=0, balance=70_000)
    pay(session, theirs, 7_000, date(2026, 3, 20))
    promise(session, theirs, 900, promised_on=date(2026, 3, 20), due_date=date(2026, 3, 25))
    attempt(session, theirs, "call", "right_party", date(2026, 3, 20))
    return March(institution, a, b, c, d, e, f, other)
