"""Test data for KPIs: delinquency history, payments and promises on given days; random facts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import strategies as st
from sqlalchemy.orm import Session

from recoup.analytics import rules
from recoup.models import Account, DelinquencyEvent, Institution, Payment
from recoup.models.contact import ContactAttempt
from recoup.models.plans import PaymentPlan
from recoup.models.scoring import AccountScore, ModelVersion
from recoup.models.workbench import Promise, PromiseStatus
from recoup.portfolio.rules import BUCKETS, bucket_for
from tests.factories import make_account, make_debtor

_counter = itertools.count(1)


def noon(day: date) -> datetime:
    """04:00 UTC: noon in Shanghai, safely inside the same local day."""
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)


def account(
    session: Session,
    institution: Institution,
    *,
    product: str = "consumer_loan",
    province: str | None = "广东省",
    city: str | None = "广州市",
    currency: str = "CNY",
) -> Account:
    debtor = make_debtor(session, institution)
    debtor.province = province
    debtor.city = city
    made = make_account(session, debtor)
    made.product = product
    made.currency = currency
    session.flush()
    return made


def state(
    session: Session,
    account: Account,
    day: date,
    *,
    days_past_due: int,
    balance: int,
    status: str | None = None,
    superseded: bool = False,
) -> None:
    """Record the account's bucket and status from ``day`` on (a delinquency event)."""
    session.add(
        DelinquencyEvent(
            institution_id=account.institution_id,
            account_id=account.id,
            effective_at=noon(day),
            recorded_at=noon(day),
            days_past_due=days_past_due,
            bucket=bucket_for(days_past_due),
            status=status or ("current" if days_past_due == 0 else "delinquent"),
            balance=balance,
            cause="import",
            superseded=superseded,
        )
    )
    session.flush()


def pay(
    session: Session, account: Account, amount: int, day: date, *, status_before: str | None = None
) -> Payment:
    payment = Payment(
        institution_id=account.institution_id,
        external_id=f"KPI-PAY-{next(_counter)}",
        account_id=account.id,
        amount=amount,
        currency=account.currency,
        paid_at=noon(day),
        applied_principal=amount,
        status_before=status_before,
    )
    session.add(payment)
    session.flush()
    return payment


@dataclass(frozen=True)
class Outcome:
    status: PromiseStatus
    on: date
    paid: int = 0


def promise(
    session: Session,
    account: Account,
    amount: int,
    *,
    promised_on: date,
    due_date: date,
    outcome: Outcome | None = None,
) -> Promise:
    row = Promise(
        institution_id=account.institution_id,
        account_id=account.id,
        debtor_id=account.debtor_id,
        amount=amount,
        currency=account.currency,
        promised_on=promised_on,
        due_date=due_date,
        channel="call",
        status=outcome.status if outcome else PromiseStatus.pending,
        paid_amount=outcome.paid if outcome else 0,
        resolved_at=noon(outcome.on) if outcome else None,
        created_by="test",
        created_at=noon(promised_on),
    )
    session.add(row)
    session.flush()
    return row


def plan(
    session: Session,
    account: Account,
    total: int,
    *,
    made_on: date,
    status: str = "active",
    ended_on: date | None = None,
) -> PaymentPlan:
    """Put the account on a monthly plan of three instalments, maybe ended (completed, broken)."""
    row = PaymentPlan(
        institution_id=account.institution_id,
        account_id=account.id,
        debtor_id=account.debtor_id,
        currency=account.currency,
        balance=total,
        discount=0,
        total=total,
        down_payment=0,
        instalment_count=3,
        frequency="monthly",
        start_on=made_on,
        status=status,
        standing={"completed": "completed", "broken": "broken"}.get(status, "on_track"),
        created_by="test",
        created_at=noon(made_on),
        resolved_at=noon(ended_on) if ended_on else None,
    )
    session.add(row)
    session.flush()
    return row


def attempt(
    session: Session,
    account: Account,
    channel: str,
    outcome: str | None,
    day: date,
    *,
    about_the_debtor: bool = False,
    status: str = "made",
    direction: str = "outbound",
    party: str = "debtor",
) -> ContactAttempt:
    """Log a contact attempt on the account (or, ``about_the_debtor``, on its debtor alone)."""
    row = ContactAttempt(
        institution_id=account.institution_id,
        debtor_id=account.debtor_id,
        account_id=None if about_the_debtor else account.id,
        channel=channel,
        party=party,
        direction=direction,
        status=status,
        planned_at=noon(day),
        started_at=noon(day) if status == "made" else None,
        outcome=outcome,
        actor="test",
    )
    session.add(row)
    session.flush()
    return row


def score(
    session: Session,
    made: Account,
    model: ModelVersion,
    day: date,
    segment: str,
    *,
    expected_recovery: int = 0,
    priority: float | None = None,
) -> None:
    """A score of ``made`` dated ``day`` by ``model`` that puts it in ``segment``."""
    session.add(
        AccountScore(
            institution_id=made.institution_id,
            account_id=made.id,
            model_version_id=model.id,
            model_version=model.version,
            as_of=day,
            scored_at=noon(day),
            probability=0.5,
            points=600.0,
            grade="C",
            expected_recovery=expected_recovery,
            currency="CNY",
            reasons=[],
            segment=segment,
            priority=priority,
        )
    )


# --- Random facts of groups, for the formulas and the answer's text. ---------------------------

STATES = (*BUCKETS, "settled", "closed", "charged_off")
# Priced channels, and one without a cost (its contacts make the cost unknown).
PRICING = rules.Pricing(
    costs={"call": Decimal("1.50"), "sms": Decimal("0.05"), "visit": Decimal("80.00")},
    minor_digits=2,
)
# Mostly small numbers and zeros (empty groups, shares without data), some large and negative
# (a snapshot's facts taken out).
counts = st.one_of(st.just(0), st.integers(0, 9), st.integers(-(10**12), 10**15))
few = st.integers(0, 3)


@st.composite
def group_facts(draw: st.DrawFn) -> rules.GroupFacts:
    """Facts of one group: empty, sparse or full, as a cut of the portfolio gives them."""
    if draw(st.integers(0, 4)) == 0:
        return rules.GroupFacts()
    return rules.GroupFacts(
        buckets=tuple(
            rules.BucketCount(draw(st.sampled_from(BUCKETS)), draw(counts), draw(counts))
            for _ in range(draw(few))
        ),
        transitions=tuple(
            rules.Cell(
                draw(st.sampled_from(BUCKETS)),
                draw(st.sampled_from(STATES)),
                draw(counts),
                draw(counts),
            )
            for _ in range(draw(st.integers(0, 6)))
        ),
        delinquent_at_start=rules.Cohort(draw(counts), draw(counts), draw(counts)),
        placed=rules.Cohort(draw(counts), draw(counts), draw(counts)),
        collected=rules.Collected(draw(counts), draw(counts), draw(counts)),
        cures=rules.Average(draw(counts), draw(counts)),
        promises_due=rules.PromiseOutcomes(draw(counts), draw(counts), draw(counts), draw(few)),
        pending_promises=tuple(
            rules.PendingPromises(
                draw(st.sampled_from((*BUCKETS, None))), draw(counts), draw(counts)
            )
            for _ in range(draw(few))
        ),
        plans_ended=rules.PlanOutcomes(draw(counts), draw(counts)),
        contacts=rules.ContactCounts(
            draw(counts),
            draw(counts),
            draw(counts),
            draw(counts),
            draw(
                st.dictionaries(
                    st.sampled_from(("call", "sms", "visit", "letter", "短信")), counts, max_size=3
                )
            ),
        ),
    )
