"""Bucket history as of a date, and the roll-rate matrix built on it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution

from recoup.models import Account, DelinquencyEvent, Institution
from recoup.portfolio import repository
from recoup.portfolio.rules import bucket_for
from recoup.portfolio.schemas import PaymentInput, RollRateCell
from recoup.portfolio.service import record_payment

START = date(2026, 9, 30)
END = date(2026, 10, 31)


def at(day: date, hour: int = 4) -> datetime:
    # 04:00 UTC is 12:00 in Shanghai, safely inside the same local day.
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def event(
    session: Session,
    account: Account,
    when: datetime,
    *,
    days_past_due: int = 0,
    status: str = "delinquent",
    balance: int = 1000,
    superseded: bool = False,
) -> DelinquencyEvent:
    row = DelinquencyEvent(
        institution_id=account.institution_id,
        account_id=account.id,
        effective_at=when,
        recorded_at=when,
        days_past_due=days_past_due,
        bucket=bucket_for(days_past_due),
        status=status,
        balance=balance,
        cause="import",
        superseded=superseded,
    )
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def institution(session: Session) -> Institution:
    return make_institution(session, timezone="Asia/Shanghai")


def account_of(session: Session, institution: Institution) -> Account:
    return make_account(session, make_debtor(session, institution))


class TestBucketHistory:
    def test_each_account_as_of_past_dates(
        self, session: Session, institution: Institution
    ) -> None:
        account = account_of(session, institution)
        event(session, account, at(date(2026, 9, 1)), days_past_due=10)
        event(session, account, at(date(2026, 9, 21)), days_past_due=30)
        event(session, account, at(date(2026, 9, 22)), days_past_due=31)

        def bucket_on(day: date) -> str | None:
            states = repository.bucket_history(session, institution_id=institution.id, as_of=day)
            return states[account.id].bucket if account.id in states else None

        assert bucket_on(date(2026, 8, 31)) is None
        assert bucket_on(date(2026, 9, 1)) == "M1"
        assert bucket_on(date(2026, 9, 21)) == "M1"
        assert bucket_on(date(2026, 9, 22)) == "M2"
        assert bucket_on(date(2027, 1, 1)) == "M2"

    def test_a_date_ends_at_midnight_where_the_institution_is(
        self, session: Session, institution: Institution
    ) -> None:
        account = account_of(session, institution)
        event(session, account, at(date(2026, 9, 1)), days_past_due=10)
        # 2026-09-10 20:00 UTC is already 2026-09-11 04:00 in Shanghai.
        event(session, account, datetime(2026, 9, 10, 20, tzinfo=UTC), days_past_due=40)

        on_10th = repository.bucket_history(
            session, institution_id=institution.id, as_of=date(2026, 9, 10)
        )
        on_11th = repository.bucket_history(
            session, institution_id=institution.id, as_of=date(2026, 9, 11)
        )
        assert on_10th[account.id].bucket == "M1"
        assert on_11th[account.id].bucket == "M2"

    def test_superseded_events_are_ignored(
        self, session: Session, institution: Institution
    ) -> None:
        account = account_of(session, institution)
        event(session, account, at(date(2026, 9, 1)), days_past_due=10)
        event(session, account, at(date(2026, 9, 5)), days_past_due=70, superseded=True)

        states = repository.bucket_history(
            session, institution_id=institution.id, as_of=date(2026, 9, 30)
        )
        assert states[account.id].bucket == "M1"
        assert states[account.id].days_past_due == 10

    def test_other_institutions_are_invisible(
        self, session: Session, institution: Institution
    ) -> None:
        other = make_institution(session)
        event(session, account_of(session, other), at(date(2026, 9, 1)), days_past_due=10)

        assert repository.bucket_history(session, institution_id=institution.id, as_of=END) == {}

    def test_a_backdated_cure_changes_the_past_as_of_view(
        self, session: Session, institution: Institution
    ) -> None:
        account = make_account(
            session, make_debtor(session, institution), external_id="A-1", days_past_due=45
        )
        event(session, account, at(date(2026, 9, 1)), days_past_due=45)

        def payment(external_id: str, day: date, amount: int) -> PaymentInput:
            return PaymentInput(external_id, "A-1", amount, "CNY", at(day))

        record_payment(
            session, institution=institution, payment=payment("P2", date(2026, 10, 20), 100_000)
        )
        before = repository.bucket_history(
            session, institution_id=institution.id, as_of=date(2026, 10, 10)
        )
        assert before[account.id].bucket == "M2"

        record_payment(
            session, institution=institution, payment=payment("P1", date(2026, 10, 5), 100_000)
        )
        after = repository.bucket_history(
            session, institution_id=institution.id, as_of=date(2026, 10, 10)
        )
        assert after[account.id].bucket == "M0"
        assert after[account.id].effective_at == at(date(2026, 10, 5))


class TestRollRateMatrix:
    def test_a_small_known_portfolio(self, session: Session, institution: Institution) -> None:
        before, during = at(START - timedelta(days=5)), at(START + timedelta(days=10))

        def account_moving(
            start: tuple[int, str] | None, end: tuple[int, str] | None, balance: int
        ) -> Account:
            account = account_of(session, institution)
            if start is not None:
                event(
                    session,
                    account,
                    before,
                    days_past_due=start[0],
                    status=start[1],
                    balance=balance,
                )
            if end is not None:
                event(
                    session,
                    account,
                    during,
                    days_past_due=end[0],
                    status=end[1],
                    balance=balance // 2,
                )
            return account

        account_moving((10, "delinquent"), (40, "delinquent"), 1_000)  # M1 → M2
        account_moving((20, "delinquent"), (50, "delinquent"), 3_000)  # M1 → M2
        account_moving((25, "delinquent"), (0, "current"), 5_000)  # M1 → M0, a cure
        account_moving((45, "delinquent"), (75, "delinquent"), 7_000)  # M2 → M3
        account_moving((15, "delinquent"), (0, "settled"), 11_000)  # M1 → settled
        account_moving((0, "current"), None, 13_000)  # M0 → M0, no change
        account_moving((0, "settled"), None, 17_000)  # left before the start: not counted
        account_moving(None, (30, "delinquent"), 19_000)  # unknown at the start: not counted
        stays = account_moving((12, "delinquent"), None, 23_000)
        event(session, stays, during, days_past_due=42, superseded=True)  # a retracted roll
        other = make_institution(session)
        event(session, account_of(session, other), before, days_past_due=10)

        matrix = repository.roll_rate_matrix(
            session, institution_id=institution.id, start=START, end=END
        )

        assert matrix == [
            RollRateCell("M0", "M0", accounts=1, balance=13_000),
            RollRateCell("M1", "M0", accounts=1, balance=5_000),
            RollRateCell("M1", "M1", accounts=1, balance=23_000),
            RollRateCell("M1", "M2", accounts=2, balance=4_000),
            RollRateCell("M1", "settled", accounts=1, balance=11_000),
            RollRateCell("M2", "M3", accounts=1, balance=7_000),
        ]

    def test_the_end_cannot_precede_the_start(
        self, session: Session, institution: Institution
    ) -> None:
        with pytest.raises(ValueError, match="before its start"):
            repository.roll_rate_matrix(
                session, institution_id=institution.id, start=END, end=START
            )
