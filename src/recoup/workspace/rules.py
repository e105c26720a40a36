"""Pure rules of the agent workspace: the timeline, next-case order, call-back times, badges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from recoup.contact.channels import CHANNELS, Channel
from recoup.contact.rules import OUTCOMES, OutcomeCode

# How many timeline entries a case page shows first; "more" adds as many again.
TIMELINE_STEP = 30
TIMELINE_MAX = 600
# How many of an agent's cases "next case" asks the gate about before it gives up.
NEXT_CASE_LOOKAHEAD = 20


class TimelineKind(StrEnum):
    """What a timeline entry is."""

    CONTACT = "contact"
    PROMISE = "promise"
    PAYMENT = "payment"
    PLAN = "plan"
    CASE = "case"
    NOTE = "note"
    TASK = "task"


class TaskKind(StrEnum):
    """What a case task asks the agent to do."""

    CALLBACK = "callback"
    # The daily cycle's work for an agent: the strategy's step on the case's channel.
    CALL = "call"
    VISIT = "visit"
    LETTER = "letter"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened on a case, with what the page shows about it."""

    at: datetime
    kind: TimelineKind
    # Ties at the same instant keep their order: a higher rank shows first.
    rank: int
    details: Mapping[str, Any] = field(default_factory=dict)


def merge_timeline(
    sources: Iterable[Iterable[TimelineEntry]], *, limit: int
) -> list[TimelineEntry]:
    """Return the newest ``limit`` entries of all sources, newest first."""
    entries = [entry for source in sources for entry in source]
    entries.sort(key=lambda entry: (entry.at, entry.rank), reverse=True)
    return entries[:limit]


def timeline_limit(requested: int | None) -> int:
    """Return how many timeline entries to show: a multiple of the step, within the maximum."""
    if requested is None or requested < TIMELINE_STEP:
        return TIMELINE_STEP
    steps = -(-requested // TIMELINE_STEP)
    return min(steps * TIMELINE_STEP, TIMELINE_MAX)


@dataclass(frozen=True, slots=True)
class Callback:
    """When a call-back falls due: the time asked for if allowed, else the next allowed time."""

    due_at: datetime
    moved: bool


class NoAllowedTime(ValueError):
    """The gate allows no contact at or after the time asked for (a stop, a cease)."""


def callback_time(
    requested: datetime, *, allowed: bool, next_allowed_at: datetime | None
) -> Callback:
    """Return when a call-back falls due: ``requested`` if the gate allows it then."""
    if allowed:
        return Callback(requested, moved=False)
    if next_allowed_at is None:
        raise NoAllowedTime("the gate allows no call to this debtor at or after that time")
    return Callback(max(next_allowed_at, requested), moved=True)


def next_case_key(*, callback_due: datetime | None, priority: int, case_id: int) -> tuple[Any, ...]:
    """Order an agent's cases: due call-backs first (earliest first), then highest priority."""
    return (
        callback_due is None,
        callback_due.timestamp() if callback_due is not None else 0.0,
        -priority,
        -case_id,
    )


def log_channels() -> list[Channel]:
    """The channels an agent logs contacts on (every channel; inbound ones only as inbound)."""
    return list(Channel)


def badge_channels(contact_kind: str) -> list[Channel]:
    """The outbound channels an agent may use on a contact point of ``contact_kind``."""
    return [
        channel
        for channel, properties in CHANNELS.items()
        if properties.outbound and contact_kind in properties.contact_kinds
    ]


def outcomes_for(channel: Channel) -> list[OutcomeCode]:
    """The outcome codes that can describe a contact on ``channel``, in the documented order."""
    medium = CHANNELS[channel].medium
    return [code for code, meaning in OUTCOMES.items() if medium in meaning.media]


class FormProblem(ValueError):
    """A field of the contact form that cannot be used as given; names the field."""

    def __init__(self, field_name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.code = code


def agreement_problem(outcome: OutcomeCode, *, promise: bool, plan: bool) -> FormProblem | None:
    """Tell why a promise or plan cannot go with ``outcome``: only the debtor can agree one."""
    if promise and plan:
        return FormProblem(
            "plan_instalments", "promise_and_plan", "give either a promise or a plan, not both"
        )
    if (promise or plan) and not OUTCOMES[outcome].right_party:
        name = "promise_amount" if promise else "plan_instalments"
        return FormProblem(
            name,
            "not_right_party",
            "a promise or a plan needs an outcome where the debtor was spoken to",
        )
    return None
