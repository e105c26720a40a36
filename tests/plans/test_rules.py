"""Payment plan arithmetic: instalments sum to the agreed total, none is zero, limits hold."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from recoup.plans.rules import (
    Frequency,
    PlanLimits,
    PlanPayment,
    PlanRefused,
    PlanStatus,
    PlanTerms,
    add_months,
    schedule,
    standing,
)

LIMITS = PlanLimits(max_instalments=36, max_discount_bp=5_000, approval_above_bp=1_000)


@st.composite
def terms(draw: st.DrawFn) -> PlanTerms:
    balance = draw(st.integers(1, 10**12))
    discount = draw(st.integers(0, balance // 2))
    down = draw(st.integers(0, balance - discount))
    return PlanTerms(
        balance=balance,
        instalments=draw(st.integers(1, 36)),
        start=draw(st.dates(date(2020, 1, 1), date(2035, 12, 31))),
        frequency=draw(st.sampled_from(Frequency)),
        discount=discount,
        down_payment=down,
    )


@given(terms())
def test_instalments_sum_to_the_agreed_total_and_none_is_zero(plan_terms: PlanTerms) -> None:
    refused: PlanRefused | None = None
    try:
        plan = schedule(plan_terms, LIMITS)
    except PlanRefused as error:
        refused = error
    if refused is not None:
        assert refused.field in {"discount", "down_payment", "instalments"}
        return
    amounts = [i.amount for i in plan.instalments]
    assert sum(amounts) == plan.total == plan_terms.balance - plan_terms.discount
    assert all(amount > 0 for amount in amounts)
    regular = [i.amount for i in plan.instalments if i.number > 0]
    assert len(regular) == plan_terms.instalments
    # Equal parts; the last absorbs the rounding, and never by a whole instalment or more.
    assert len(set(regular[:-1])) <= 1
    assert 0 <= regular[-1] - regular[0] < plan_terms.instalments
    dates = [i.due_on for i in plan.instalments]
    assert dates == sorted(dates)
    assert len(set(dates)) == len(dates)
    assert plan.needs_approval == (plan.discount_bp > LIMITS.approval_above_bp)


def test_a_worked_example_in_yuan() -> None:
    plan = schedule(
        PlanTerms(balance=1_000_00, instalments=3, start=date(2027, 1, 31), down_payment=100_00)
    )
    assert [(i.number, i.due_on, i.amount) for i in plan.instalments] == [
        (0, date(2027, 1, 31), 100_00),
        (1, date(2027, 2, 28), 300_00),
        (2, date(2027, 3, 31), 300_00),
        (3, date(2027, 4, 30), 300_00),
    ]
    odd = schedule(PlanTerms(balance=100_00, instalments=3, start=date(2027, 1, 1)))
    assert [i.amount for i in odd.instalments] == [33_33, 33_33, 33_34]


@given(st.dates(date(2000, 1, 1), date(2090, 1, 1)), st.integers(0, 240))
def test_monthly_dates_keep_the_day_or_the_months_last_day(start: date, months: int) -> None:
    due = add_months(start, months)
    assert (due.year * 12 + due.month) - (start.year * 12 + start.month) == months
    assert due.day == start.day or ((due + timedelta(days=1)).day == 1 and due.day < start.day)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"balance": 0}, "balance"),
        ({"instalments": 0}, "instalments"),
        ({"instalments": 25}, "instalments"),
        ({"discount": 3_001_00}, "discount"),
        ({"discount": -1}, "discount"),
        ({"down_payment": 10_000_00}, "down_payment"),
        ({"balance": 5, "instalments": 6}, "instalments"),
    ],
)
def test_refusals_name_the_term(changes: dict[str, int], field: str) -> None:
    base = {"balance": 10_000_00, "instalments": 6, "start": date(2027, 1, 1)}
    with pytest.raises(PlanRefused) as refused:
        schedule(PlanTerms(**(base | changes)))  # type: ignore[arg-type]
    assert refused.value.field == field
    assert str(refused.value)


def test_a_discount_above_the_threshold_needs_approval_and_at_the_limit_is_allowed() -> None:
    start = date(2027, 1, 1)
    assert not schedule(PlanTerms(10_000_00, 2, start, discount=1_000_00)).needs_approval
    assert schedule(PlanTerms(10_000_00, 2, start, discount=1_000_01)).needs_approval
    assert schedule(PlanTerms(10_000_00, 2, start, discount=3_000_00)).needs_approval
    with pytest.raises(PlanRefused):
        schedule(PlanTerms(10_000_00, 2, start, discount=3_000_01))


def test_status_follows_the_payments() -> None:
    plan = schedule(PlanTerms(balance=300_00, instalments=3, start=date(2027, 1, 10)))
    due = [i.due_on for i in plan.instalments]
    assert standing(plan, [], today=date(2027, 1, 10)).status is PlanStatus.ON_TRACK
    late = standing(plan, [], today=date(2027, 1, 12), grace_days=5)
    assert (late.status, late.overdue) == (PlanStatus.LATE, 100_00)
    broken = standing(plan, [], today=date(2027, 1, 16), grace_days=5)
    assert (broken.status, broken.broken_on) == (PlanStatus.BROKEN, date(2027, 1, 16))
    first = [PlanPayment(date(2027, 1, 9), 100_00)]
    on_track = standing(plan, first, today=date(2027, 2, 1))
    assert on_track.status is PlanStatus.ON_TRACK
    assert on_track.next_due == plan.instalments[1]
    partial = [PlanPayment(date(2027, 1, 9), 150_00)]
    assert standing(plan, partial, today=due[1] + timedelta(days=6)).status is PlanStatus.BROKEN
    everything = [PlanPayment(date(2027, 1, 9), 300_00)]
    assert standing(plan, everything, today=date(2027, 1, 9)).status is PlanStatus.COMPLETED
    future = [PlanPayment(date(2027, 5, 1), 300_00)]
    assert standing(plan, future, today=date(2027, 1, 12)).status is PlanStatus.LATE


@given(terms(), st.integers(0, 400))
def test_paying_every_instalment_on_time_is_never_late(plan_terms: PlanTerms, days: int) -> None:
    try:
        plan = schedule(plan_terms, LIMITS)
    except PlanRefused:
        assume(False)
        return
    today = plan_terms.start + timedelta(days=days)
    payments = [PlanPayment(i.due_on, i.amount) for i in plan.instalments if i.due_on <= today]
    assert standing(plan, payments, today=today).status in {
        PlanStatus.ON_TRACK,
        PlanStatus.COMPLETED,
    }
