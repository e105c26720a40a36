"""Recording payments against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution

from recoup.kit.clock import aware
from recoup.models import Account, AuditEvent, DelinquencyEvent, Institution, Payment
from recoup.portfolio import repository
from recoup.portfolio.schemas import PaymentInput
from recoup.portfolio.service import record_payment, record_payments

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)


def pay(
    account: Account,
    external_id: str,
    amount: int,
    *,
    paid_at: datetime = T0,
    currency: str = "CNY",
    channel: str = "bank_transfer",
) -> PaymentInput:
    return PaymentInput(
        external_id=external_id,
        account_external_id=account.external_id,
        amount=amount,
        currency=currency,
        paid_at=paid_at,
        channel=channel,
    )


def events(session: Session, account: Account) -> list[DelinquencyEvent]:
    return repository.delinquency_events(
        session, institution_id=account.institution_id, account_id=account.id
    )


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session)


@pytest.fixture
def account(session: Session, institution: Institution) -> Account:
    # 10,000.00 principal, 500.00 interest, 100.00 fees, 50.00 penalty; 1,000.00 overdue, 45 DPD.
    return make_account(session, make_debtor(session, institution), days_past_due=45)


class TestPartialPayment:
    def test_pays_down_in_waterfall_order_and_keeps_delinquency(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 20_000)
        )

        assert outcome.status == "applied"
        assert outcome.payment_id is not None
        payment = session.get_one(Payment, outcome.payment_id)
        # consumer_finance preset: penalty → fees → interest → principal
        assert (payment.applied_penalty, payment.applied_fees, payment.applied_interest) == (
            5_000,
            10_000,
            5_000,
        )
        assert payment.applied_principal == 0
        assert payment.unapplied == 0
        assert (account.penalty, account.fees, account.interest) == (0, 0, 45_000)
        assert account.overdue_amount == 80_000
        assert (account.days_past_due, account.bucket, account.status) == (45, "M2", "delinquent")
        assert events(session, account) == []

    def test_writes_an_audit_event_without_pii(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcome = record_payment(session, institution=institution, payment=pay(account, "P1", 100))

        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "payment.record")
        ).one()
        assert audit.object_id == str(outcome.payment_id)
        assert audit.details["amount"] == 100
        assert audit.details["applied"]["penalty"] == 100
        assert "张伟" not in str(audit.details)

    def test_commercial_bank_uses_its_own_waterfall(self, session: Session) -> None:
        bank = make_institution(session, preset="commercial_bank")
        account = make_account(session, make_debtor(session, bank))

        outcome = record_payment(session, institution=bank, payment=pay(account, "P1", 52_000))

        payment = session.get_one(Payment, outcome.payment_id)
        # interest → fees → penalty → principal
        assert (payment.applied_interest, payment.applied_fees, payment.applied_penalty) == (
            50_000,
            2_000,
            0,
        )


class TestCure:
    def test_paying_the_overdue_amount_cures_the_account(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        record_payment(session, institution=institution, payment=pay(account, "P1", 100_000))

        assert account.overdue_amount == 0
        assert (account.days_past_due, account.bucket, account.status) == (0, "M0", "current")
        [event] = events(session, account)
        assert (event.bucket, event.status, event.days_past_due, event.cause) == (
            "M0",
            "current",
            0,
            "payment",
        )
        assert event.balance == account.balance
        assert aware(event.effective_at) == T0


class TestPayoffAndOverpayment:
    def test_paying_everything_settles_and_keeps_the_excess_unapplied(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 1_065_000 + 1_234)
        )

        payment = session.get_one(Payment, outcome.payment_id)
        assert payment.unapplied == 1_234
        assert account.balance == 0
        assert (account.status, account.bucket, account.days_past_due) == ("settled", "M0", 0)
        [event] = events(session, account)
        assert (event.status, event.balance) == ("settled", 0)

    def test_a_paid_off_credit_card_stays_open(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        account.product = "credit_card"
        record_payment(session, institution=institution, payment=pay(account, "P1", 1_065_000))

        assert account.balance == 0
        assert account.status == "current"

    def test_a_payment_after_settlement_is_rejected(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        record_payment(session, institution=institution, payment=pay(account, "P1", 1_065_000))
        outcome = record_payment(
            session,
            institution=institution,
            payment=pay(account, "P2", 500, paid_at=T0 + timedelta(days=1)),
        )

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert "settled" in outcome.reason

    def test_a_payment_made_before_settlement_is_still_applied(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        record_payment(session, institution=institution, payment=pay(account, "P1", 1_065_000))
        outcome = record_payment(
            session,
            institution=institution,
            payment=pay(account, "P0", 5_000, paid_at=T0 - timedelta(days=1)),
        )

        assert outcome.status == "applied"
        later = session.scalars(select(Payment).where(Payment.external_id == "P1")).one()
        assert later.unapplied == 5_000
        assert account.status == "settled"


class TestIdempotency:
    def test_the_same_payment_twice_changes_nothing_twice(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        first = record_payment(session, institution=institution, payment=pay(account, "P1", 500))
        again = record_payment(session, institution=institution, payment=pay(account, "P1", 500))

        assert again.status == "duplicate"
        assert again.payment_id == first.payment_id
        assert account.penalty == 4_500
        assert len(session.scalars(select(Payment)).all()) == 1

    def test_a_duplicate_inside_one_batch(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcomes = record_payments(
            session,
            institution=institution,
            payments=[pay(account, "P1", 500), pay(account, "P1", 500)],
        )

        assert [outcome.status for outcome in outcomes] == ["applied", "duplicate"]
        assert outcomes[0].payment_id == outcomes[1].payment_id
        assert account.penalty == 4_500

    def test_the_same_external_id_with_another_amount_is_a_conflict(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        record_payment(session, institution=institution, payment=pay(account, "P1", 500))
        outcome = record_payment(session, institution=institution, payment=pay(account, "P1", 600))

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert "amount 600 (recorded: 500)" in outcome.reason
        assert account.penalty == 4_500

    def test_a_conflict_inside_one_batch(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcomes = record_payments(
            session,
            institution=institution,
            payments=[pay(account, "P1", 500), pay(account, "P1", 600)],
        )

        assert [outcome.status for outcome in outcomes] == ["applied", "rejected"]
        assert account.penalty == 4_500

    def test_external_ids_are_per_institution(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        other = make_institution(session)
        other_account = make_account(
            session, make_debtor(session, other), external_id=account.external_id
        )
        record_payment(session, institution=institution, payment=pay(account, "P1", 500))
        outcome = record_payment(session, institution=other, payment=pay(other_account, "P1", 500))

        assert outcome.status == "applied"
        assert other_account.penalty == 4_500


class TestRejections:
    def test_wrong_currency(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 500, currency="USD")
        )

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert "USD" in outcome.reason
        assert "CNY" in outcome.reason
        assert session.scalars(select(Payment)).all() == []

    def test_closed_account(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        account.status = "closed"
        outcome = record_payment(session, institution=institution, payment=pay(account, "P1", 500))

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert "closed" in outcome.reason
        assert account.penalty == 5_000

    def test_unknown_account(self, session: Session, institution: Institution) -> None:
        outcome = record_payment(
            session,
            institution=institution,
            payment=PaymentInput(
                external_id="P1",
                account_external_id="NOPE",
                amount=500,
                currency="CNY",
                paid_at=T0,
            ),
        )

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert "unknown account 'NOPE'" in outcome.reason

    def test_another_institutions_account_is_unknown(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        other = make_institution(session)
        outcome = record_payment(session, institution=other, payment=pay(account, "P1", 500))

        assert outcome.status == "rejected"
        assert account.penalty == 5_000

    @pytest.mark.parametrize(
        ("amount", "paid_at", "channel", "words"),
        [
            (0, T0, "card", "positive"),
            (-5, T0, "card", "positive"),
            (500, datetime(2026, 10, 1, 10, 0), "card", "time zone"),
            (500, datetime.now(UTC) + timedelta(days=2), "card", "future"),
            (500, T0, "pigeon", "channel"),
        ],
    )
    def test_bad_values(
        self,
        session: Session,
        institution: Institution,
        account: Account,
        amount: int,
        paid_at: datetime,
        channel: str,
        words: str,
    ) -> None:
        outcome = record_payment(
            session,
            institution=institution,
            payment=pay(account, "P1", amount, paid_at=paid_at, channel=channel),
        )

        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert words in outcome.reason

    def test_a_charged_off_account_takes_recoveries(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        account.status = "charged_off"
        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 100_000)
        )

        assert outcome.status == "applied"
        assert account.status == "charged_off"
        assert account.days_past_due == 0

    def test_a_batch_keeps_input_order_and_applies_the_good_rows(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcomes = record_payments(
            session,
            institution=institution,
            payments=[
                pay(account, "P1", 500, currency="USD"),
                pay(account, "P2", 500),
                PaymentInput("P3", "NOPE", 500, "CNY", T0),
            ],
        )

        assert [(o.external_id, o.status) for o in outcomes] == [
            ("P1", "rejected"),
            ("P2", "applied"),
            ("P3", "rejected"),
        ]
        assert account.penalty == 4_500


class TestPaidAtTimeZones:
    def test_paid_at_is_stored_in_utc(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        local = datetime(2026, 10, 1, 18, 0, tzinfo=SHANGHAI)
        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 500, paid_at=local)
        )
        session.expire_all()

        payment = session.get_one(Payment, outcome.payment_id)
        assert aware(payment.paid_at) == local
        assert aware(payment.paid_at).hour == 10


class TestRejectionCodes:
    @pytest.mark.parametrize(
        ("change", "code", "field"),
        [
            ({"currency": "USD"}, "currency_mismatch", "currency"),
            ({"amount": 0}, "invalid_amount", "amount"),
            ({"channel": "pigeon"}, "unknown_channel", "channel"),
            ({"paid_at": datetime(2026, 10, 1)}, "missing_timezone", "paid_at"),
            ({"paid_at": datetime.now(UTC) + timedelta(days=1)}, "future_date", "paid_at"),
            ({"account_external_id": "NOPE"}, "unknown_account", "account_external_id"),
            ({"external_id": ""}, "invalid_external_id", "external_id"),
        ],
    )
    def test_each_rejection_names_its_code_and_field(
        self,
        session: Session,
        institution: Institution,
        account: Account,
        change: dict[str, object],
        code: str,
        field: str,
    ) -> None:
        values: dict[str, object] = {
            "external_id": "P1",
            "account_external_id": account.external_id,
            "amount": 500,
            "currency": "CNY",
            "paid_at": T0,
            "channel": "card",
        } | change
        outcome = record_payment(
            session,
            institution=institution,
            payment=PaymentInput(**values),  # type: ignore[arg-type]
        )

        assert (outcome.status, outcome.code, outcome.field) == ("rejected", code, field)

    def test_closed_and_settled_accounts_and_conflicts(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        closed = make_account(session, make_debtor(session, institution), status="closed")
        record_payment(session, institution=institution, payment=pay(account, "P1", 1_065_000))

        outcomes = record_payments(
            session,
            institution=institution,
            payments=[
                pay(closed, "P2", 500),
                pay(account, "P3", 500, paid_at=T0 + timedelta(hours=1)),
                pay(account, "P1", 999),
            ],
        )

        assert [(o.code, o.field) for o in outcomes] == [
            ("closed_account", "account_external_id"),
            ("settled_account", "account_external_id"),
            ("conflicting_duplicate", "external_id"),
        ]


class TestBatchesBehaveLikeSeparateCalls:
    def test_a_payment_after_an_in_batch_settlement_is_rejected(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        outcomes = record_payments(
            session,
            institution=institution,
            payments=[
                pay(account, "P2", 500, paid_at=T0 + timedelta(days=1)),
                pay(account, "P1", 1_065_000),
                pay(account, "P2", 500, paid_at=T0 + timedelta(days=1)),
            ],
        )

        assert [o.status for o in outcomes] == ["rejected", "applied", "rejected"]
        assert outcomes[0].code == "settled_account"
        assert outcomes[2] == outcomes[0]
        assert account.status == "settled"


class TestHistoryAfterAnImport:
    def test_a_payment_older_than_the_last_import_takes_effect_from_that_import(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        imported_at = T0 + timedelta(days=2)
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

        outcome = record_payment(
            session, institution=institution, payment=pay(account, "P1", 100_000)
        )

        cure = events(session, account)[-1]
        assert (cure.bucket, cure.payment_id) == ("M0", outcome.payment_id)
        assert aware(cure.effective_at) == imported_at
        today = repository.bucket_history(
            session, institution_id=institution.id, as_of=(T0 + timedelta(days=3)).date()
        )
        assert today[account.id].bucket == account.bucket == "M0"


class TestWaterfallSetting:
    def test_a_broken_waterfall_setting_is_refused_with_the_institution_named(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        from recoup.kit.errors import ValidationFailed

        institution.settings = {**institution.settings, "waterfall": ["principal", "fees"]}
        with pytest.raises(ValidationFailed, match=institution.code):
            record_payment(session, institution=institution, payment=pay(account, "P1", 500))

    def test_without_a_setting_the_default_order_applies(
        self, session: Session, institution: Institution, account: Account
    ) -> None:
        institution.settings = {}
        outcome = record_payment(session, institution=institution, payment=pay(account, "P1", 500))

        assert session.get_one(Payment, outcome.payment_id).applied_penalty == 500
