"""Which script (话术) fits a conversation, pure: from the case, the last outcome and who answered.

The agent opens a case and sees one suggestion, worked out in this order (the first that
applies wins), so the safest script always comes first:

1. someone says it is the wrong number → *wrong number* (apologise, end the call);
2. someone other than the debtor answers → *third party* (say nothing about the debt);
3. the debtor was abusive last time → *anger or abuse* (de-escalate first);
4. the case is disputed or the debtor disputed last time → *dispute* (explain how to
   dispute, no collection talk until it is resolved);
5. the case is paused for hardship or the debtor reported hardship → *hardship*;
6. a promise or a plan is running → *promise confirmation*;
7. the debtor refused to pay at least ``PLAN_OFFER_AFTER_REFUSALS`` times, or broke a
   promise since → *plan offer*; one refusal → *refusal to pay*;
8. otherwise → *first contact* (who is calling and why, to the debtor only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from recoup.contact.rules import OutcomeCode, Party
from recoup.enums import ScriptSituation

# After this many refusals on a case, offering a plan works better than asking again.
PLAN_OFFER_AFTER_REFUSALS = 2

# Case states and reasons, as the cases domain stores them (strings; cases build on scripts).
DISPUTED = "disputed"
PAUSED = "paused"
PROMISED = "promised"
ON_PLAN = "on_plan"
HARDSHIP_REASON = "hardship"


class Answered(StrEnum):
    """Who the agent is speaking to, as far as they know when the call connects."""

    DEBTOR = Party.DEBTOR.value
    THIRD_PARTY = Party.THIRD_PARTY.value
    WRONG_NUMBER = "wrong_number"


class SuggestionReason(StrEnum):
    """Why a situation was suggested (each has a label in both languages)."""

    WRONG_NUMBER = "wrong_number"
    THIRD_PARTY = "third_party"
    ABUSIVE_LAST_TIME = "abusive_last_time"
    DISPUTED = "disputed"
    HARDSHIP = "hardship"
    PROMISE_RUNNING = "promise_running"
    PLAN_RUNNING = "plan_running"
    REPEATED_REFUSALS = "repeated_refusals"
    PROMISE_BROKEN = "promise_broken"
    REFUSED_LAST_TIME = "refused_last_time"
    OPENING = "opening"


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """What the agent knows as the call starts."""

    case_state: str | None = None
    case_reason: str | None = None
    last_outcome: str | None = None
    answered: Answered | None = None
    refusals: int = 0
    promise_broken: bool = False


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The situation to open the library at, and why."""

    situation: ScriptSituation
    reason: SuggestionReason


def suggest_situation(conversation: Conversation) -> Suggestion:
    """Choose the script situation for a conversation (see the module docstring for the order)."""
    state, outcome = conversation.case_state, conversation.last_outcome
    if conversation.answered is Answered.WRONG_NUMBER:
        return Suggestion(ScriptSituation.wrong_number, SuggestionReason.WRONG_NUMBER)
    if conversation.answered is Answered.THIRD_PARTY:
        return Suggestion(ScriptSituation.third_party, SuggestionReason.THIRD_PARTY)
    if outcome == OutcomeCode.ABUSIVE:
        return Suggestion(ScriptSituation.anger_or_abuse, SuggestionReason.ABUSIVE_LAST_TIME)
    if state == DISPUTED or outcome == OutcomeCode.DISPUTE:
        return Suggestion(ScriptSituation.dispute, SuggestionReason.DISPUTED)
    if (state == PAUSED and conversation.case_reason == HARDSHIP_REASON) or (
        outcome == OutcomeCode.HARDSHIP
    ):
        return Suggestion(ScriptSituation.hardship, SuggestionReason.HARDSHIP)
    if state == PROMISED:
        return Suggestion(ScriptSituation.promise_confirmation, SuggestionReason.PROMISE_RUNNING)
    if state == ON_PLAN:
        return Suggestion(ScriptSituation.promise_confirmation, SuggestionReason.PLAN_RUNNING)
    if conversation.refusals >= PLAN_OFFER_AFTER_REFUSALS:
        return Suggestion(ScriptSituation.plan_offer, SuggestionReason.REPEATED_REFUSALS)
    if conversation.promise_broken:
        return Suggestion(ScriptSituation.plan_offer, SuggestionReason.PROMISE_BROKEN)
    if outcome == OutcomeCode.REFUSED_TO_PAY:
        return Suggestion(ScriptSituation.refusal_to_pay, SuggestionReason.REFUSED_LAST_TIME)
    return Suggestion(ScriptSituation.first_contact, SuggestionReason.OPENING)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptOutcomes:
    """The counts behind one script's comparison."""

    attempts: int
    right_party: int
    promises: int
    promises_resolved: int
    promises_kept: int
    disputes: int
    complaints: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptRates:
    """One script's rates; None where there is nothing to divide by."""

    promise_rate: float | None
    kept_rate: float | None
    dispute_rate: float | None
    complaint_rate: float | None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def script_rates(outcomes: ScriptOutcomes) -> ScriptRates:
    """Return a script's rates: promises per conversation with the debtor, kept per resolved
    promise, disputes and complaints per attempt."""
    return ScriptRates(
        promise_rate=_share(outcomes.promises, outcomes.right_party),
        kept_rate=_share(outcomes.promises_kept, outcomes.promises_resolved),
        dispute_rate=_share(outcomes.disputes, outcomes.attempts),
        complaint_rate=_share(outcomes.complaints, outcomes.attempts),
    )
