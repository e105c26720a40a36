"""Collection cases, pure: the states a case moves through and the events that move it.

A case groups one debtor's delinquent accounts at one institution. It opens when an account of
the debtor becomes delinquent and no case of theirs is open, and closes when none of its
accounts is delinquent any more (``cured`` if balances remain, ``paid`` if nothing is owed) or
when the accounts are written off or the debtor is deceased. A closed case stays closed; a new
delinquency opens a new case, so a case's history tells one episode.

States and what moves a case between them (``TRANSITIONS``)::

    open ──promise made──▶ promised ──kept / broken──▶ open
    open, promised ──plan agreed──▶ on_plan ──broken──▶ open
    on_plan ──completed──▶ closed (settled)
    any live state ──dispute──▶ disputed ──resolved──▶ open
    any live state ──hardship / complaint / cease──▶ paused ──resume──▶ open
    open, promised, paused ──escalate legal / agency──▶ escalated ──recall──▶ open
    any live state ──cleared / paid / written off / deceased──▶ closed

Escalating to an outside agency needs the debtor to have been told first (CN-OUT: notice of
outsourcing before the agency contacts them). A dispute pauses collection until it is resolved
(US-VAL); a paused case is not worked until someone resumes it with a reason.

What an agent's logged outcome does to a case (``OUTCOME_EVENTS``): a promise made moves it to
*promised*, a dispute to *disputed*, hardship and a request to stop contact to *paused*; the
other outcomes leave the state alone (a refusal to pay or abuse is counted on the case, and the
queue rules decide who works it next).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from recoup.enums import FINISHED_STATUSES


class CaseState(StrEnum):
    """Where a case stands."""

    OPEN = "open"
    PROMISED = "promised"
    ON_PLAN = "on_plan"
    DISPUTED = "disputed"
    PAUSED = "paused"
    ESCALATED = "escalated"
    CLOSED = "closed"


LIVE_STATES = frozenset(CaseState) - {CaseState.CLOSED}


class CaseReason(StrEnum):
    """Why a case is paused, escalated or closed."""

    HARDSHIP = "hardship"
    COMPLAINT = "complaint"
    CEASE = "cease"
    LEGAL = "legal"
    AGENCY = "agency"
    CURED = "cured"
    PAID = "paid"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"
    DECEASED = "deceased"


class CaseEvent(StrEnum):
    """Something that happened to a case."""

    PROMISE_MADE = "promise_made"
    PROMISE_KEPT = "promise_kept"
    PROMISE_BROKEN = "promise_broken"
    PROMISE_CANCELLED = "promise_cancelled"
    PLAN_AGREED = "plan_agreed"
    PLAN_BROKEN = "plan_broken"
    PLAN_CANCELLED = "plan_cancelled"
    PLAN_COMPLETED = "plan_completed"
    DISPUTE_RAISED = "dispute_raised"
    DISPUTE_RESOLVED = "dispute_resolved"
    HARDSHIP = "hardship"
    COMPLAINT = "complaint"
    CEASE_REQUESTED = "cease_requested"
    RESUME = "resume"
    ESCALATE_LEGAL = "escalate_legal"
    ESCALATE_AGENCY = "escalate_agency"
    RECALL = "recall"
    DELINQUENCY_CLEARED = "delinquency_cleared"
    PAID_OFF = "paid_off"
    WRITTEN_OFF = "written_off"
    DECEASED = "deceased"


@dataclass(frozen=True, slots=True)
class Move:
    """Where an event takes a case from the states it applies to."""

    sources: frozenset[CaseState]
    target: CaseState
    reason: CaseReason | None = None
    # Set by hand (within permissions) rather than by the system's own events.
    manual: bool = False


def _move(
    sources: frozenset[CaseState] | set[CaseState],
    target: CaseState,
    reason: CaseReason | None = None,
    *,
    manual: bool = False,
) -> Move:
    return Move(frozenset(sources), target, reason, manual=manual)


_O, _PR, _PL = CaseState.OPEN, CaseState.PROMISED, CaseState.ON_PLAN
_D, _PA, _E, _C = CaseState.DISPUTED, CaseState.PAUSED, CaseState.ESCALATED, CaseState.CLOSED

TRANSITIONS: Mapping[CaseEvent, Move] = MappingProxyType(
    {
        CaseEvent.PROMISE_MADE: _move({_O, _PR}, _PR),
        CaseEvent.PROMISE_KEPT: _move({_PR}, _O),
        CaseEvent.PROMISE_BROKEN: _move({_PR}, _O),
        CaseEvent.PROMISE_CANCELLED: _move({_PR}, _O),
        CaseEvent.PLAN_AGREED: _move({_O, _PR}, _PL),
        CaseEvent.PLAN_BROKEN: _move({_PL}, _O),
        CaseEvent.PLAN_CANCELLED: _move({_PL}, _O),
        CaseEvent.PLAN_COMPLETED: _move({_PL}, _C, CaseReason.SETTLED),
        CaseEvent.DISPUTE_RAISED: _move(LIVE_STATES - {_D}, _D),
        CaseEvent.DISPUTE_RESOLVED: _move({_D}, _O, manual=True),
        CaseEvent.HARDSHIP: _move(LIVE_STATES - {_PA, _D}, _PA, CaseReason.HARDSHIP),
        CaseEvent.COMPLAINT: _move(LIVE_STATES - {_PA}, _PA, CaseReason.COMPLAINT),
        CaseEvent.CEASE_REQUESTED: _move(LIVE_STATES - {_PA}, _PA, CaseReason.CEASE),
        CaseEvent.RESUME: _move({_PA}, _O, manual=True),
        CaseEvent.ESCALATE_LEGAL: _move({_O, _PR, _PA}, _E, CaseReason.LEGAL, manual=True),
        CaseEvent.ESCALATE_AGENCY: _move({_O, _PR, _PA}, _E, CaseReason.AGENCY, manual=True),
        CaseEvent.RECALL: _move({_E}, _O, manual=True),
        CaseEvent.DELINQUENCY_CLEARED: _move(LIVE_STATES, _C, CaseReason.CURED),
        CaseEvent.PAID_OFF: _move(LIVE_STATES, _C, CaseReason.PAID),
        CaseEvent.WRITTEN_OFF: _move(LIVE_STATES, _C, CaseReason.WRITTEN_OFF, manual=True),
        CaseEvent.DECEASED: _move(LIVE_STATES, _C, CaseReason.DECEASED, manual=True),
    }
)

# Outcome codes of the contact log that move a case; the others leave its state alone.
OUTCOME_EVENTS: Mapping[str, CaseEvent] = MappingProxyType(
    {
        "promise_made": CaseEvent.PROMISE_MADE,
        "dispute": CaseEvent.DISPUTE_RAISED,
        "hardship": CaseEvent.HARDSHIP,
        "refused_contact": CaseEvent.CEASE_REQUESTED,
    }
)


class TransitionRefused(ValueError):
    """The event does not apply to the case as it stands; the message says why."""


@dataclass(frozen=True, slots=True)
class CaseStanding:
    """What a transition is checked against."""

    state: CaseState
    reason: CaseReason | None = None
    # CN-OUT: the debtor was told the case may be passed to an outside agency.
    outsourcing_notice_sent: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A case's change of state: from, to, and why (kept forever in the case's history)."""

    event: CaseEvent
    from_state: CaseState
    to_state: CaseState
    reason: CaseReason | None
    note: str | None = None


def transition(
    case: CaseStanding, event: CaseEvent, *, by_hand: bool = False, note: str | None = None
) -> Transition:
    """Apply an event to a case, or refuse it with a message that says what would work."""
    move = TRANSITIONS[event]
    if case.state not in move.sources:
        allowed = ", ".join(sorted(state.value for state in move.sources))
        raise TransitionRefused(
            f"A case that is {case.state.value} cannot take '{event.value}'; "
            f"it applies to cases that are {allowed}."
        )
    if move.manual and not by_hand:
        raise TransitionRefused(f"'{event.value}' is a decision someone must make by hand.")
    if by_hand and move.manual and not (note and note.strip()):
        raise TransitionRefused(f"Say why: '{event.value}' needs a note for the case history.")
    if event is CaseEvent.ESCALATE_AGENCY and not case.outsourcing_notice_sent:
        raise TransitionRefused(
            "Tell the debtor first: the case may go to an outside agency only after the "
            "outsourcing notice was sent (CN-OUT)."
        )
    return Transition(event, case.state, move.target, move.reason, note)


def event_for_outcome(outcome: str) -> CaseEvent | None:
    """The case event a contact outcome causes, if any."""
    return OUTCOME_EVENTS.get(outcome)


def event_for_accounts(*, delinquent: int, owed: int, total: int) -> CaseEvent | None:
    """What the state of a live case's accounts means for it.

    ``delinquent`` accounts past due, ``owed`` accounts with a balance, of ``total`` accounts.
    """
    if total == 0 or delinquent > 0:
        return None
    return CaseEvent.PAID_OFF if owed == 0 else CaseEvent.DELINQUENCY_CLEARED


_CURRENT = "current"
# Cases whose work is allocated to agents each day: promised and on-plan cases get follow-up
# calls too; disputed, paused and escalated ones wait for a person's decision.
WORKED_STATES = frozenset({CaseState.OPEN, CaseState.PROMISED, CaseState.ON_PLAN})


def is_delinquent(status: str, days_past_due: int) -> bool:
    """Tell whether an account needs collection work (charged-off debts are still collected)."""
    if status in FINISHED_STATUSES:
        return False
    return status != _CURRENT or days_past_due > 0


def delinquent_mask(
    statuses: npt.NDArray[np.object_], days_past_due: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """``is_delinquent`` of many accounts at once."""
    finished = np.isin(statuses, [str(status) for status in FINISHED_STATUSES])
    mask: npt.NDArray[np.bool_] = ~finished & ((statuses != _CURRENT) | (days_past_due > 0))
    return mask


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """Which cases a queue takes: empty lists match anything."""

    id: int
    rank: int
    buckets: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    provinces: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What routing looks at: the worst bucket of a case's accounts, products, province."""

    bucket: str
    products: frozenset[str]
    province: str | None


def route(case: CaseFacts, queues: Iterable[QueueSpec]) -> int | None:
    """The first queue (by rank, then id) whose criteria the case meets, if any."""
    for queue in sorted(queues, key=lambda q: (q.rank, q.id)):
        if queue.buckets and case.bucket not in queue.buckets:
            continue
        if queue.products and not case.products & queue.products:
            continue
        if queue.provinces and case.province not in queue.provinces:
            continue
        return queue.id
    return None
