"""Case states: every event applies where documented and is refused elsewhere with a reason."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recoup.cases.rules import (
    LIVE_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseFacts,
    CaseReason,
    CaseStanding,
    CaseState,
    QueueSpec,
    TransitionRefused,
    delinquent_mask,
    event_for_accounts,
    event_for_outcome,
    is_delinquent,
    route,
    transition,
)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(CaseState, CaseEvent)))
def test_every_event_either_moves_the_case_or_says_why_not(
    state: CaseState, event: CaseEvent
) -> None:
    move = TRANSITIONS[event]
    case = CaseStanding(state, outsourcing_notice_sent=True)
    if state in move.sources:
        done = transition(case, event, by_hand=True, note="agreed on the phone")
        assert (done.from_state, done.to_state, done.reason) == (state, move.target, move.reason)
    else:
        with pytest.raises(TransitionRefused, match=state.value):
            transition(case, event, by_hand=True, note="agreed on the phone")


def test_a_closed_case_stays_closed() -> None:
    for event, move in TRANSITIONS.items():
        assert CaseState.CLOSED not in move.sources, event


def test_every_live_state_can_close_and_reach_open_again() -> None:
    for state in LIVE_STATES:
        assert state in TRANSITIONS[CaseEvent.PAID_OFF].sources
        reopening = [
            e for e, m in TRANSITIONS.items() if state in m.sources and m.target is CaseState.OPEN
        ]
        assert reopening or state is CaseState.OPEN, state


def test_the_promise_and_plan_cycle() -> None:
    promised = transition(CaseStanding(CaseState.OPEN), CaseEvent.PROMISE_MADE)
    assert promised.to_state is CaseState.PROMISED
    broken = transition(CaseStanding(promised.to_state), CaseEvent.PROMISE_BROKEN)
    assert broken.to_state is CaseState.OPEN
    plan = transition(CaseStanding(CaseState.PROMISED), CaseEvent.PLAN_AGREED)
    done = transition(CaseStanding(plan.to_state), CaseEvent.PLAN_COMPLETED)
    assert (done.to_state, done.reason) == (CaseState.CLOSED, CaseReason.SETTLED)


def test_decisions_by_hand_need_a_person_and_a_note() -> None:
    paused = CaseStanding(CaseState.PAUSED, CaseReason.HARDSHIP)
    with pytest.raises(TransitionRefused, match="by hand"):
        transition(paused, CaseEvent.RESUME)
    with pytest.raises(TransitionRefused, match="needs a note"):
        transition(paused, CaseEvent.RESUME, by_hand=True, note="  ")
    resumed = transition(paused, CaseEvent.RESUME, by_hand=True, note="income restored")
    assert (resumed.to_state, resumed.note) == (CaseState.OPEN, "income restored")


def test_an_outside_agency_only_after_the_outsourcing_notice() -> None:
    with pytest.raises(TransitionRefused, match="CN-OUT"):
        transition(CaseStanding(CaseState.OPEN), CaseEvent.ESCALATE_AGENCY, by_hand=True, note="x")
    sent = CaseStanding(CaseState.OPEN, outsourcing_notice_sent=True)
    moved = transition(sent, CaseEvent.ESCALATE_AGENCY, by_hand=True, note="no contact in 90 days")
    assert (moved.to_state, moved.reason) == (CaseState.ESCALATED, CaseReason.AGENCY)


def test_outcomes_that_move_a_case() -> None:
    assert event_for_outcome("promise_made") is CaseEvent.PROMISE_MADE
    assert event_for_outcome("dispute") is CaseEvent.DISPUTE_RAISED
    assert event_for_outcome("hardship") is CaseEvent.HARDSHIP
    assert event_for_outcome("refused_contact") is CaseEvent.CEASE_REQUESTED
    assert event_for_outcome("no_answer") is None
    assert event_for_outcome("refused_to_pay") is None


def test_accounts_close_a_case_as_cured_or_paid() -> None:
    assert event_for_accounts(delinquent=1, owed=2, total=2) is None
    assert event_for_accounts(delinquent=0, owed=1, total=2) is CaseEvent.DELINQUENCY_CLEARED
    assert event_for_accounts(delinquent=0, owed=0, total=2) is CaseEvent.PAID_OFF
    assert event_for_accounts(delinquent=0, owed=0, total=0) is None


def test_which_accounts_need_collection() -> None:
    assert not is_delinquent("current", 0)
    assert is_delinquent("current", 3)
    assert is_delinquent("delinquent", 0)
    assert is_delinquent("charged_off", 200)
    assert not is_delinquent("settled", 40)
    assert not is_delinquent("closed", 0)


def test_the_delinquent_mask_is_is_delinquent_on_columns() -> None:
    pairs = list(
        itertools.product(
            ["current", "delinquent", "charged_off", "settled", "closed"], [0, 1, 40, 200]
        )
    )
    statuses = np.asarray([status for status, _ in pairs], dtype=object)
    days = np.asarray([dpd for _, dpd in pairs], dtype=np.int64)
    assert delinquent_mask(statuses, days).tolist() == [
        is_delinquent(status, dpd) for status, dpd in pairs
    ]


def test_routing_takes_the_first_matching_queue_by_rank() -> None:
    queues = [
        QueueSpec(1, rank=100),
        QueueSpec(2, rank=10, buckets=frozenset({"M1"})),
        QueueSpec(3, rank=5, buckets=frozenset({"M1"}), provinces=frozenset({"北京市"})),
        QueueSpec(4, rank=1, products=frozenset({"mortgage"})),
    ]
    early = CaseFacts("M1", frozenset({"credit_card"}), "上海市")
    assert route(early, queues) == 2
    assert route(CaseFacts("M1", frozenset({"credit_card"}), "北京市"), queues) == 3
    assert route(CaseFacts("M4", frozenset({"credit_card", "mortgage"}), None), queues) == 4
    assert route(CaseFacts("M4", frozenset({"cash_loan"}), None), queues) == 1
    assert route(early, queues[1:2]) == 2
    assert route(CaseFacts("M2", frozenset(), None), queues[1:3]) is None
