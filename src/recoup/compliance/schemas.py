"""API shapes of the compliance domain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from recoup.contact.channels import Channel, outbound_channel
from recoup.contact.rules import ACCEPTED_OUTCOME_NAMES, Party
from recoup.enums import ScriptSituation
from recoup.kit.schemas import CleanText, Day, Moment, RowIdField


def _outbound(channel: Channel) -> Channel:
    return outbound_channel(channel.value)


def _known_outcome(name: str) -> str:
    if name not in ACCEPTED_OUTCOME_NAMES:
        raise ValueError(
            f"unknown outcome {name!r}; use one of {', '.join(ACCEPTED_OUTCOME_NAMES)}"
        )
    return name


# A channel the institution starts contacts on (the self-service page is not one).
OutboundChannel = Annotated[Channel, AfterValidator(_outbound)]


class ContactCheck(BaseModel):
    """A planned contact to put through the gate."""

    debtor_id: RowIdField
    contact_point_id: RowIdField | None = None
    account_id: RowIdField | None = None
    channel: OutboundChannel
    party: Party = Party.DEBTOR
    at: Moment
    automated: bool = False
    at_workplace: bool = False
    # False asks without holding a slot (a dry run): planners and badges ask this way.
    reserve: bool = True


class ReasonRead(BaseModel):
    """Why a contact is blocked: the rule id and a message in the caller's language."""

    rule_id: str
    code: str
    message: str
    message_en: str
    message_zh: str


class ContactCheckResult(BaseModel):
    """The gate's answer; decision_id is what a channel must present to contact."""

    allowed: bool
    reasons: list[ReasonRead]
    next_allowed_at: datetime | None
    decision_id: int
    reserved: bool
    pack: str
    policy: str


class OutcomeCreate(BaseModel):
    """What came of an allowed contact, for the contact log."""

    outcome: Annotated[str, AfterValidator(_known_outcome)] = Field(
        description=(
            "An outcome code (right_party, no_answer, promise_made, message_delivered, …), "
            "not_made when the contact was not made, or an older name (conversation, "
            "refused, unreachable, delivered, failed, planned)"
        ),
        json_schema_extra={"enum": list(ACCEPTED_OUTCOME_NAMES)},
    )
    happened_at: Moment
    effective: bool | None = Field(
        default=None,
        description=(
            "Whether it counts as an effective call; the outcome code decides when left out. "
            "true counts a code that does not; false for a code that counts is refused."
        ),
    )
    ended_at: Moment | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    provider_message_id: str | None = Field(default=None, max_length=128)
    script_id: RowIdField | None = Field(
        default=None, description="The approved call script the agent used (from the library)"
    )


class DecisionRead(BaseModel):
    """A stored gate decision with its evidence."""

    id: int
    debtor_id: int
    contact_point_id: int | None
    account_id: int | None
    channel: str
    party: str
    planned_at: datetime
    allowed: bool
    rule_ids: list[str]
    reasons: list[dict[str, Any]]
    next_allowed_at: datetime | None
    timezones: list[str]
    pack_code: str
    pack_version: str
    policy_name: str
    policy_version: str
    actor: str
    created_at: datetime


class TemplateReview(BaseModel):
    """A text to review before it is used as a template or script."""

    text: str = Field(max_length=20_000)
    locale: str = Field(min_length=2, max_length=16)
    audience: Party
    channel: Channel
    kind: str | None = Field(default=None, max_length=32)


class FindingRead(BaseModel):
    """One problem found in a text, with its span in the text as sent."""

    category: str
    rule_id: str
    start: int
    end: int
    text: str
    message: str


class TemplateReviewResult(BaseModel):
    """The review verdict: passed only when nothing was found."""

    passed: bool
    findings: list[FindingRead]


class TemplateCreate(BaseModel):
    """A new draft template or call script."""

    name: CleanText = Field(min_length=1, max_length=128)
    channel: Channel
    locale: str = Field(min_length=2, max_length=16)
    audience: Party
    kind: str | None = Field(default=None, max_length=32)
    body: str = Field(min_length=1, max_length=20_000)
    situation: ScriptSituation | None = Field(
        default=None, description="The conversation a call script (kind 'script') is for"
    )
    guidance: str | None = Field(
        default=None,
        max_length=4000,
        description="A script's de-escalation guidance for the agent, one point a line",
    )


class TemplateDecision(BaseModel):
    """A compliance officer's note on approving or rejecting a template."""

    note: CleanText | None = Field(default=None, max_length=2000)


class TemplateRead(BaseModel):
    """A template with its workflow state and the latest review findings."""

    id: int
    name: str
    channel: str
    locale: str
    audience: str
    kind: str | None
    situation: str | None = None
    guidance: str | None = None
    body: str
    status: str
    author: str
    reviewer: str | None
    review_note: str | None
    findings: list[dict[str, Any]]
    re_review_on: date | None


class PolicyProposal(BaseModel):
    """A new institution policy document (see compliance.policy.policy_document)."""

    document: dict[str, Any]


class PolicyRead(BaseModel):
    """One version of the institution's policy."""

    version: int
    name: str
    document: dict[str, Any]
    proposed_by: str
    approved_by: str | None
    approved_at: datetime | None


class ViolationRead(BaseModel):
    """A queued finding from an agent's note or a transcript."""

    id: int
    source: str
    source_id: str | None
    debtor_id: int | None
    actor: str | None
    category: str
    rule_id: str
    excerpt: str
    status: str


class ViolationResolution(BaseModel):
    """The compliance officer's verdict on a violation."""

    confirmed: bool
    note: CleanText | None = Field(default=None, max_length=2000)


class NoteScan(BaseModel):
    """An agent's note or a transcript to scan after the fact."""

    text: str = Field(min_length=1, max_length=100_000)
    locale: str = Field(min_length=2, max_length=16)
    source: str = Field(default="call_note", max_length=32)
    source_id: str | None = Field(default=None, max_length=64)
    debtor_id: RowIdField | None = None


class CertificationCreate(BaseModel):
    """A compliance training certificate to record for a user."""

    user_id: RowIdField
    course: CleanText = Field(min_length=1, max_length=128)
    issued_on: Day
    expires_on: Day


class CertificationRead(BaseModel):
    """A certificate an agent holds."""

    id: int
    user_id: int
    course: str
    issued_on: date
    expires_on: date


class DebtorFactsUpdate(BaseModel):
    """Debtor-level compliance facts to record; only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    cease_contact: bool | None = None
    attorney_represented: bool | None = None
    disputed: bool | None = None
    deceased: bool | None = None
    bankrupt: bool | None = None
    work_contact_forbidden: bool | None = None


class DebtorFactsRead(BaseModel):
    """A debtor's compliance facts as stored."""

    debtor_id: int
    cease_contact: bool
    attorney_represented: bool
    disputed: bool
    deceased: bool
    bankrupt: bool
    work_contact_forbidden: bool
    changed: list[str]


class InconvenientUpdate(BaseModel):
    """Times and places the debtor said are inconvenient; a list sent replaces the stored one."""

    model_config = ConfigDict(extra="forbid")

    times: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=24,
        description="Local hours, e.g. 22:00-08:00 or 09:00-17:00 mon-fri; [] clears them",
    )
    places: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=4, description="workplace and/or home; [] clears them"
    )
    note: str | None = Field(default=None, max_length=255)


class InconvenientRead(BaseModel):
    """What the debtor said is inconvenient, as the gate applies it (US-INCONV)."""

    debtor_id: int
    times: list[str]
    places: list[str]
    changed: list[str]


class AccountFactsUpdate(BaseModel):
    """Per-debt facts to record; only the fields sent change, null clears a date."""

    model_config = ConfigDict(extra="forbid")

    initial_communication_on: Day | None = None
    validation_notice_sent_on: Day | None = None
    time_barred_on: Day | None = None


class AccountFactsRead(BaseModel):
    """An account's compliance facts as stored."""

    account_id: int
    initial_communication_on: date | None
    validation_notice_sent_on: date | None
    time_barred_on: date | None
    changed: list[str]
