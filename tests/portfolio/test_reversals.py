"""A payment the core system reversed is kept but no longer counts: its account is re-lived
without it, as if the money had never come."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution
from tests.portfolio.test_backdated_payments import (
    PAYMENTS,
    arrive_one_by_one,
    fresh_account,
    snapshot,
)
from tests.workbench.helpers import add_promise

from recoup.kit import events
from recoup.kit.clock import aware
from recoup.models import Account, Institution
from recoup.models.webhooks import WebhookEvent
from recoup.portfolio import repository
from recoup.portfolio.schemas import PaymentInput, ReversalInput
from recoup.portfolio.service import record_payments, reverse_payments
from recoup.webhooks import service as webhooks
from recoup.workbench import service as workbench

SUBSETS = [
    subset for size in (1, 2, 3) for subset in itertools.combinations(("P1", "P2", "P3"), size)
]


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session)


def reverse(
    session: Session,
    institution: Institution,
    account: Account,
    names: tuple[str, ...],
    *,
    days_later: int = 0,
) -> list[str]:
    outcomes = reverse_payments(
        session,
        institution=institution,
        reversals=[
            ReversalInput(
                external_id=f"{account.external_id}-{name}",
                reversed_at=PAYMENTS[name][0] + timedelta(days=days_later),
                reason="cheque bounced",
            )
            for name in names
        ],
    )
    session.flush()
    return [outcome.status for outcome in outcomes]


def standing(session: Session, account: Account) -> dict[str, object]:
    """The account and its payments not reversed, as a user sees them."""
    seen = snapshot(session, account)
    reversed_names = {
        payment.external_id.rsplit("-", 1)[1]
        for payment in repository.account_payments(
            session, institution_id=account.institution_id, account_id=account.id
        )
        if payment.reversed_at is not None
    }
    return {
        "account": seen["account"],
        "payments": [row for row in seen["payments"] if row[0] not in reversed_names],  # type: ignore[attr-defined]
    }


class TestReversal:
    @pytest.mark.parametrize("reversed_names", SUBSETS)
    def test_the_account_ends_as_if_the_reversed_payments_never_came(
        self, session: Session, institution: Institution, reversed_names: tuple[str, ...]
    ) -> None:
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P1", "P2", "P3"))
        assert reverse(session, institution, account, reversed_names) == ["reversed"] * len(
            reversed_names
        )
        kept = tuple(name for name in ("P1", "P2", "P3") if name not in reversed_names)
        without = fresh_account(session, institution)
        arrive_one_by_one(session, institution, without, kept)
        assert standing(session, account) == standing(session, without)

    def test_reversing_the_cure_makes_the_account_delinquent_again_and_aged(
        self, session: Session, institution: Institution
    ) -> None:
        webhooks.create_subscription(
            session,
            institution_id=institution.id,
            url="https://crm.example.com/hooks",
            event_types=["payment.reversed"],
            actor="admin",
        )
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P1", "P2"))
        assert (account.status, account.days_past_due, account.overdue_amount) == (
            "current",
            0,
            0,
        )
        # The cheque of P2 bounced ten days after it was paid in.
        assert reverse(session, institution, account, ("P2",), days_later=10) == ["reversed"]
        assert account.status == "delinquent"
        assert account.overdue_amount == 100_000 - 60_000
        assert account.days_past_due == 45 + 10
        assert account.bucket == "M2"
        assert account.principal + account.interest + account.fees + account.penalty == (
            1_065_000 - 60_000
        )
        live = repository.delinquency_events(
            session,
            institution_id=institution.id,
            account_id=account.id,
            include_superseded=False,
        )
        # The cure P2 wrote is superseded; the reversal is recorded when it happened.
        assert [(event.cause, event.status, aware(event.effective_at)) for event in live] == [
            ("reversal", "delinquent", PAYMENTS["P2"][0] + timedelta(days=10))
        ]
        (p2,) = [
            payment
            for payment in repository.account_payments(
                session, institution_id=institution.id, account_id=account.id
            )
            if payment.external_id.endswith("-P2")
        ]
        assert p2.reversal_reason == "cheque bounced"
        # Subscribers hear of it (ids and amounts, no PII).
        (announced,) = session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.institution_id == institution.id,
                WebhookEvent.type == "payment.reversed",
            )
        )
        assert events.payload_of(announced)["data"] == {
            "payment_id": p2.id,
            "account_id": account.id,
            "amount_minor": 50_000,
            "currency": "CNY",
            "reason": "cheque bounced",
        }
        assert aware(p2.reversed_at) == PAYMENTS["P2"][0] + timedelta(days=10)

    def test_a_reversal_again_is_a_duplicate_and_an_unknown_payment_is_refused(
        self, session: Session, institution: Institution
    ) -> None:
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P1",))
        assert reverse(session, institution, account, ("P1",)) == ["reversed"]
        before = snapshot(session, account)
        assert reverse(session, institution, account, ("P1",)) == ["duplicate"]
        assert reverse(session, institution, account, ("P2",)) == ["rejected"]
        assert snapshot(session, account)["account"] == before["account"]

    def test_a_payment_after_a_reversal_applies_to_the_restored_balance(
        self, session: Session, institution: Institution
    ) -> None:
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P2",))
        reverse(session, institution, account, ("P2",))
        # P1 is earlier than the reversed P2: no replay through it.
        arrive_one_by_one(session, institution, account, ("P1",))
        alone = fresh_account(session, institution)
        arrive_one_by_one(session, institution, alone, ("P1",))
        assert standing(session, account) == standing(session, alone)

    def test_payments_on_the_same_instant_are_replayed_in_their_order(
        self, session: Session, institution: Institution
    ) -> None:
        def pay(account: Account, name: str, amount: int) -> None:
            (outcome,) = record_payments(
                session,
                institution=institution,
                payments=[
                    PaymentInput(
                        external_id=f"{account.external_id}-{name}",
                        account_external_id=account.external_id,
                        amount=amount,
                        currency="CNY",
                        paid_at=PAYMENTS["P1"][0],
                    )
                ],
            )
            assert outcome.status == "applied"

        account = fresh_account(session, institution)
        pay(account, "P1", 60_000)
        pay(account, "S2", 50_000)  # the same day, as a core system dating by day sends it
        assert reverse(session, institution, account, ("P1",)) == ["reversed"]
        alone = fresh_account(session, institution)
        pay(alone, "S2", 50_000)
        assert standing(session, account) == standing(session, alone)


def test_a_status_set_by_another_domain_stays(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution), days_past_due=45)
    arrive_one_by_one(session, institution, account, ("P1",))
    account.status = "legal"
    session.flush()
    reverse(session, institution, account, ("P1",))
    assert account.status == "legal"
    assert account.overdue_amount == 100_000


def test_a_promise_the_reversed_payment_kept_is_open_again_then_broken(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution), days_past_due=45)
    promised, due = date(2026, 3, 1), date(2026, 3, 10)
    promise = add_promise(session, account, amount=10_000, promised_on=promised, due_date=due)
    paid_at = datetime(2026, 3, 5, 4, tzinfo=UTC)
    (paid,) = record_payments(
        session,
        institution=institution,
        payments=[
            PaymentInput(
                external_id="PAY-KEPT",
                account_external_id=account.external_id,
                amount=10_000,
                currency="CNY",
                paid_at=paid_at,
            )
        ],
    )
    assert paid.status == "applied"
    kept = workbench.reconcile_promises(
        session, institution=institution, as_of=date(2026, 3, 6), actor="test"
    )
    assert kept.kept == 1
    (outcome,) = reverse_payments(
        session,
        institution=institution,
        reversals=[ReversalInput("PAY-KEPT", paid_at + timedelta(days=2), "cheque bounced")],
    )
    assert outcome.status == "reversed"
    session.flush()
    session.refresh(promise)
    assert (promise.status, promise.paid_amount, promise.resolved_at) == ("pending", 0, None)
    # After its grace, on the payments that stand, the promise is broken.
    broken = workbench.reconcile_promises(
        session, institution=institution, as_of=due + timedelta(days=4), actor="test"
    )
    assert broken.broken == 1
    session.refresh(promise)
    assert promise.status == "broken"
