"""Pure payment rules: buckets, the waterfall, one payment's effect and replays."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.portfolio.rules import (
    BALANCE_PARTS,
    AccountState,
    Balances,
    apply_payment,
    apply_waterfall,
    bucket_for,
    replay_payments,
    restore_balances,
)

parts = st.integers(min_value=0, max_value=10**12)
balances = st.builds(Balances, principal=parts, interest=parts, fees=parts, penalty=parts)
amounts = st.integers(min_value=0, max_value=5 * 10**12)
orders = st.permutations(BALANCE_PARTS)


class TestBucketBoundaries:
    @pytest.mark.parametrize(
        ("days_past_due", "bucket"),
        [
            (0, "M0"),
            (1, "M1"),
            (30, "M1"),
            (31, "M2"),
            (60, "M2"),
            (61, "M3"),
            (90, "M3"),
            (91, "M4"),
            (120, "M4"),
            (121, "M5"),
            (150, "M5"),
            (151, "M6"),
            (180, "M6"),
            (181, "M6+"),
            (3650, "M6+"),
        ],
    )
    def test_bucket(self, days_past_due: int, bucket: str) -> None:
        assert bucket_for(days_past_due) == bucket

    def test_negative_days_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            bucket_for(-1)


class TestWaterfall:
    @given(balances, amounts, orders)
    def test_applied_plus_unapplied_is_the_amount(
        self, start: Balances, amount: int, order: tuple[str, ...]
    ) -> None:
        allocation = apply_waterfall(start, amount, order)
        assert sum(allocation.applied.values()) + allocation.unapplied == amount

    @given(balances, amounts, orders)
    def test_nothing_goes_negative(
        self, start: Balances, amount: int, order: tuple[str, ...]
    ) -> None:
        allocation = apply_waterfall(start, amount, order)
        assert allocation.unapplied >= 0
        for part in BALANCE_PARTS:
            assert 0 <= allocation.applied[part] <= getattr(start, part)
            assert getattr(allocation.remaining, part) >= 0
            assert getattr(allocation.remaining, part) + allocation.applied[part] == getattr(
                start, part
            )

    @given(balances, amounts, orders)
    def test_a_part_is_paid_only_once_the_parts_before_it_are_cleared(
        self, start: Balances, amount: int, order: tuple[str, ...]
    ) -> None:
        allocation = apply_waterfall(start, amount, order)
        for position, part in enumerate(order):
            if allocation.applied[part] > 0:
                for earlier in order[:position]:
                    assert getattr(allocation.remaining, earlier) == 0
        if allocation.unapplied > 0:
            assert allocation.remaining.total == 0

    def test_order_is_followed(self) -> None:
        start = Balances(principal=1000, interest=100, fees=10, penalty=1)
        allocation = apply_waterfall(start, 105, ["interest", "fees", "penalty", "principal"])
        assert allocation.applied == {"penalty": 0, "fees": 5, "interest": 100, "principal": 0}

    def test_a_waterfall_must_name_every_part_once(self) -> None:
        with pytest.raises(ValueError, match="exactly once"):
            apply_waterfall(Balances(), 1, ["principal", "principal", "fees", "interest"])


def delinquent(balance: Balances, overdue: int = 1000, days: int = 45) -> AccountState:
    return AccountState(balance, overdue_amount=overdue, days_past_due=days, status="delinquent")


LOAN = Balances(principal=10_000, interest=500, fees=100, penalty=50)


class TestApplyPayment:
    def test_a_partial_payment_keeps_days_past_due(self) -> None:
        effect = apply_payment(delinquent(LOAN), 999)
        assert effect.after.overdue_amount == 1
        assert (effect.after.days_past_due, effect.after.bucket) == (45, "M2")
        assert effect.after.status == "delinquent"
        assert not effect.changes_delinquency

    def test_clearing_the_overdue_amount_cures(self) -> None:
        effect = apply_payment(delinquent(LOAN), 1000)
        assert (effect.after.days_past_due, effect.after.bucket) == (0, "M0")
        assert effect.after.status == "current"
        assert effect.changes_delinquency

    @pytest.mark.parametrize("status", ["promised", "on_plan", "legal", "agency", "charged_off"])
    def test_a_cure_keeps_statuses_other_domains_own(self, status: str) -> None:
        state = AccountState(LOAN, overdue_amount=1000, days_past_due=45, status=status)
        effect = apply_payment(state, 1000)
        assert (effect.after.bucket, effect.after.status) == ("M0", status)

    def test_paying_everything_settles_a_loan(self) -> None:
        effect = apply_payment(delinquent(LOAN), LOAN.total + 7)
        assert effect.after.status == "settled"
        assert effect.after.balances.total == 0
        assert effect.allocation.unapplied == 7

    def test_paying_everything_leaves_a_credit_card_open(self) -> None:
        effect = apply_payment(delinquent(LOAN), LOAN.total, revolving=True)
        assert effect.after.status == "current"

    def test_overdue_never_exceeds_what_is_left(self) -> None:
        effect = apply_payment(delinquent(LOAN, overdue=LOAN.total + 500), LOAN.total - 10)
        assert effect.after.overdue_amount == 10


class TestReplay:
    @given(
        balances,
        st.integers(min_value=0, max_value=10**12),
        st.integers(min_value=0, max_value=400),
        st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=5),
        orders,
        st.booleans(),
    )
    def test_the_final_state_does_not_depend_on_the_payment_order(
        self,
        start_balances: Balances,
        overdue: int,
        days: int,
        payments: list[int],
        order: tuple[str, ...],
        revolving: bool,
    ) -> None:
        start = delinquent(start_balances, overdue=min(overdue, start_balances.total), days=days)
        finals = {
            replay_payments(start, list(arrival), order, revolving=revolving)[-1].after
            for arrival in itertools.permutations(payments)
        }
        assert len(finals) == 1

    @given(balances, st.lists(st.integers(min_value=1, max_value=10**12), max_size=5), orders)
    def test_restoring_undoes_the_applied_amounts(
        self, start_balances: Balances, payments: list[int], order: tuple[str, ...]
    ) -> None:
        effects = replay_payments(delinquent(start_balances, overdue=0, days=0), payments, order)
        final = effects[-1].after.balances if effects else start_balances
        applied = [effect.allocation.applied for effect in effects]
        assert restore_balances(final, applied) == start_balances
