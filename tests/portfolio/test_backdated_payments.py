"""A payment that arrives after later ones recomputes history without deleting any."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution

from recoup.kit.clock import aware
from recoup.models import Account, Institution, Payment
from recoup.portfolio import repository
from recoup.portfolio.schemas import PaymentInput
from recoup.portfolio.service import record_payment, record_payments

T0 = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
# Balance 1,065,000 with 100,000 overdue at 45 days past due (see make_account).
PAYMENTS = {
    "P1": (T0, 60_000),  # partial
    "P2": (T0 + timedelta(days=3), 50_000),  # with P1, clears the overdue amount: cure
    "P3": (T0 + timedelta(days=7), 1_020_000),  # with any other, pays it off: settled
}


def inputs(account: Account, names: tuple[str, ...]) -> list[PaymentInput]:
    return [
        PaymentInput(
            external_id=f"{account.external_id}-{name}",
            account_external_id=account.external_id,
            amount=PAYMENTS[name][1],
            currency="CNY",
            paid_at=PAYMENTS[name][0],
        )
        for name in names
    ]


def snapshot(session: Session, account: Account) -> dict[str, object]:
    """Everything a user could notice about an account, its payments and live history."""
    payments = repository.account_payments(
        session, institution_id=account.institution_id, account_id=account.id
    )
    live = repository.delinquency_events(
        session,
        institution_id=account.institution_id,
        account_id=account.id,
        include_superseded=False,
    )
    return {
        "account": (
            account.principal,
            account.interest,
            account.fees,
            account.penalty,
            account.overdue_amount,
            account.minimum_due,
            account.days_past_due,
            account.bucket,
            account.status,
        ),
        "payments": [
            (
                payment.external_id.rsplit("-", 1)[1],
                payment.applied_penalty,
                payment.applied_fees,
                payment.applied_interest,
                payment.applied_principal,
                payment.unapplied,
                payment.overdue_before,
                payment.days_past_due_before,
                payment.status_before,
            )
            for payment in payments
        ],
        "history": [
            (
                aware(event.effective_at),
                event.days_past_due,
                event.bucket,
                event.status,
                event.balance,
            )
            for event in live
        ],
    }


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session)


def fresh_account(session: Session, institution: Institution) -> Account:
    return make_account(session, make_debtor(session, institution), days_past_due=45)


def arrive_one_by_one(
    session: Session, institution: Institution, account: Account, names: tuple[str, ...]
) -> None:
    for payment in inputs(account, names):
        outcome = record_payment(session, institution=institution, payment=payment)
        assert outcome.status == "applied", outcome.reason


class TestBackdatedPayment:
    @pytest.mark.parametrize("arrival", list(itertools.permutations(PAYMENTS)))
    def test_any_arrival_order_ends_as_if_the_payments_arrived_in_order(
        self, session: Session, institution: Institution, arrival: tuple[str, ...]
    ) -> None:
        in_order = fresh_account(session, institution)
        arrive_one_by_one(session, institution, in_order, ("P1", "P2", "P3"))
        shuffled = fresh_account(session, institution)
        arrive_one_by_one(session, institution, shuffled, arrival)

        assert snapshot(session, shuffled) == snapshot(session, in_order)

    def test_the_reference_history(self, session: Session, institution: Institution) -> None:
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P1", "P2", "P3"))

        history = snapshot(session, account)["history"]
        assert history == [
            (T0 + timedelta(days=3), 0, "M0", "current", 1_065_000 - 110_000),
            (T0 + timedelta(days=7), 0, "M0", "settled", 0),
        ]
        p3 = snapshot(session, account)["payments"][2]
        assert p3[5] == 60_000 + 50_000 + 1_020_000 - 1_065_000  # unapplied

    def test_later_events_are_superseded_not_deleted(
        self, session: Session, institution: Institution
    ) -> None:
        def history() -> list[tuple[str, str, datetime, bool]]:
            return [
                (e.status, e.cause, aware(e.effective_at), e.superseded)
                for e in repository.delinquency_events(
                    session, institution_id=institution.id, account_id=account.id
                )
            ]

        day3, day7 = T0 + timedelta(days=3), T0 + timedelta(days=7)
        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P3",))
        # P3 alone clears the overdue amount on day 7.
        assert history() == [("current", "payment", day7, False)]

        arrive_one_by_one(session, institution, account, ("P2",))
        # With P2 first, P3 pays the account off on day 7: one settlement, no separate cure.
        assert history() == [
            ("current", "payment", day7, True),
            ("settled", "correction", day7, False),
        ]

        arrive_one_by_one(session, institution, account, ("P1",))
        # With P1 too, P2 cures on day 3 and P3 settles on day 7; nothing is deleted.
        assert sorted(history(), key=lambda row: (row[3], row[2], row[0])) == [
            ("current", "correction", day3, False),
            ("settled", "correction", day7, False),
            ("current", "payment", day7, True),
            ("settled", "correction", day7, True),
        ]

    def test_a_backlog_in_one_batch_is_applied_in_paid_order(
        self, session: Session, institution: Institution
    ) -> None:
        in_order = fresh_account(session, institution)
        arrive_one_by_one(session, institution, in_order, ("P1", "P2", "P3"))
        batched = fresh_account(session, institution)

        outcomes = record_payments(
            session, institution=institution, payments=inputs(batched, ("P3", "P1", "P2"))
        )

        assert [outcome.status for outcome in outcomes] == ["applied"] * 3
        assert snapshot(session, batched) == snapshot(session, in_order)
        history = repository.delinquency_events(
            session, institution_id=institution.id, account_id=batched.id
        )
        assert not any(event.superseded for event in history)

    def test_the_backdated_recompute_is_audited(
        self, session: Session, institution: Institution
    ) -> None:
        from sqlalchemy import select

        from recoup.models import AuditEvent

        account = fresh_account(session, institution)
        arrive_one_by_one(session, institution, account, ("P2", "P1"))

        last = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "payment.record")
            .order_by(AuditEvent.sequence.desc())
        ).first()
        assert last is not None
        p2 = session.scalars(
            select(Payment).where(Payment.external_id == f"{account.external_id}-P2")
        ).one()
        assert last.details["recomputed_payment_ids"] == [p2.id]


class TestBackdatedAfterAnImport:
    def test_only_the_replayed_payments_events_are_superseded(
        self, session: Session, institution: Institution
    ) -> None:
        from recoup.models import DelinquencyEvent

        account = fresh_account(session, institution)
        imported_at = T0 + timedelta(days=5)
        session.add(
            DelinquencyEvent(
                institution_id=institution.id,
                account_id=account.id,
                effective_at=imported_at,
                recorded_at=imported_at,
                days_past_due=45,
                bucket="M2",
                status="delinquent",
                balance=account.balance,
                cause="import",
            )
        )
        session.flush()

        def payment(name: str, day: int, amount: int) -> PaymentInput:
            return PaymentInput(
                f"{account.external_id}-{name}",
                account.external_id,
                amount,
                "CNY",
                T0 + timedelta(days=day),
            )

        for item in (payment("cure", 1, 100_000), payment("late", 7, 1_000)):
            assert (
                record_payment(session, institution=institution, payment=item).status == "applied"
            )
        # Made before "late" but after "cure": replays "late" only.
        assert (
            record_payment(
                session, institution=institution, payment=payment("between", 2, 1_000)
            ).status
            == "applied"
        )

        history = repository.delinquency_events(
            session, institution_id=institution.id, account_id=account.id
        )
        assert [(e.cause, e.bucket, aware(e.effective_at), e.superseded) for e in history] == [
            ("import", "M2", imported_at, False),
            ("payment", "M0", imported_at, False),
        ]
        assert account.bucket == "M0"
