"""Pure rules of the contact log: outcome codes and what they mean, attempt states, consent.

Every contact attempt or message is one row of the contact log (``contact_attempts``). An
outbound attempt starts *planned* when the gate allows it, becomes *made* with an outcome
code when it happens, or *cancelled* when it is not made; nobody reporting it by its expiry
makes it *expired*, which still counts against the debtor's caps (the conservative reading
regulators take) until a late report says otherwise. An inbound contact (the debtor calls
in, replies, uses the self-service page) is logged as made, without a gate decision.

An outcome code carries its meaning as data (``OUTCOMES``): whether it reached the debtor
(a right-party contact), someone else (a third-party contact), counts as an effective call
under CN-FREQ-V, as a failed attempt to reach the debtor (what CN-TGT needs before a contact
person may be called), as a conversation (US-7IN7: no call for seven days after one), or as
a refusal of further contact (CN-TGT: stop calling a contact person who refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from recoup.contact.channels import (
    CHANNELS,
    CONSENT_CHANNELS,
    Channel,
    Medium,
)


class Party(StrEnum):
    """Who is contacted: the debtor or someone else (a contact person, 联系人)."""

    DEBTOR = "debtor"
    THIRD_PARTY = "third_party"


class Direction(StrEnum):
    """Who started a contact: the institution (outbound) or the person (inbound)."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class AttemptStatus(StrEnum):
    """Where an attempt stands: planned by the gate, made, cancelled or expired unreported."""

    PLANNED = "planned"
    MADE = "made"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OutcomeCode(StrEnum):
    """What came of a contact attempt (the documented list; meanings in ``OUTCOMES``)."""

    RIGHT_PARTY = "right_party"
    THIRD_PARTY = "third_party"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    SWITCHED_OFF = "switched_off"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    REFUSED_TO_PAY = "refused_to_pay"
    PROMISE_MADE = "promise_made"
    DISPUTE = "dispute"
    HARDSHIP = "hardship"
    PAID_ALREADY = "paid_already"
    CALLBACK_REQUESTED = "callback_requested"
    REFUSED_CONTACT = "refused_contact"
    ABUSIVE = "abusive"
    MESSAGE_DELIVERED = "message_delivered"
    MESSAGE_FAILED = "message_failed"
    MESSAGE_BOUNCED = "message_bounced"


_SPOKEN = frozenset({Medium.VOICE, Medium.IN_PERSON})
_ANY = frozenset(Medium)
_MESSAGES = frozenset({Medium.WRITTEN})


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeMeaning:
    """What an outcome code means for the rules and the KPIs."""

    # A person answered or was met (a contact, in the contact-rate KPI).
    reached: bool = False
    # The debtor was reached (a right-party contact, RPC).
    right_party: bool = False
    # Someone other than the debtor was reached.
    third_party: bool = False
    # A conversation with the debtor about the debt: starts the US-7IN7 cooldown.
    conversation: bool = False
    # A call that connected to a person: counts toward CN-FREQ-V's effective-call cap.
    effective: bool = False
    # An attempt that did not reach anyone: counts toward CN-TGT's unreachability evidence.
    failed_to_reach: bool = False
    # The person reached refused further contact: CN-TGT stops contacting a contact person.
    refused_contact: bool = False
    # The media the code can describe (a busy tone is no letter's outcome).
    media: frozenset[Medium] = _ANY
    name_en: str
    name_zh: str


def _talk(name_en: str, name_zh: str, *, right_party: bool = True) -> OutcomeMeaning:
    """A spoken exchange with the debtor (or, with ``right_party=False``, someone else)."""
    return OutcomeMeaning(
        reached=True,
        right_party=right_party,
        third_party=not right_party,
        conversation=right_party,
        effective=True,
        media=_ANY,
        name_en=name_en,
        name_zh=name_zh,
    )


def _missed(name_en: str, name_zh: str, media: frozenset[Medium]) -> OutcomeMeaning:
    return OutcomeMeaning(failed_to_reach=True, media=media, name_en=name_en, name_zh=name_zh)


OUTCOMES: Mapping[OutcomeCode, OutcomeMeaning] = MappingProxyType(
    {
        OutcomeCode.RIGHT_PARTY: _talk("spoke with the debtor", "本人接通"),
        OutcomeCode.THIRD_PARTY: _talk("spoke with someone else", "他人接听", right_party=False),
        OutcomeCode.NO_ANSWER: _missed("no answer", "无人接听", _SPOKEN),
        OutcomeCode.BUSY: _missed("busy", "占线", frozenset({Medium.VOICE})),
        OutcomeCode.SWITCHED_OFF: _missed(
            "switched off or out of service", "关机或停机", frozenset({Medium.VOICE})
        ),
        OutcomeCode.VOICEMAIL: _missed("voicemail", "语音信箱", frozenset({Medium.VOICE})),
        OutcomeCode.WRONG_NUMBER: _missed("wrong number or address", "号码或地址错误", _ANY),
        OutcomeCode.REFUSED_TO_PAY: _talk("refused to pay", "拒绝还款"),
        OutcomeCode.PROMISE_MADE: _talk("promise to pay made", "承诺还款"),
        OutcomeCode.DISPUTE: _talk("disputes the debt", "对债务有异议"),
        OutcomeCode.HARDSHIP: _talk("reports hardship", "称经济困难"),
        OutcomeCode.PAID_ALREADY: _talk("says it is paid already", "称已还款"),
        OutcomeCode.CALLBACK_REQUESTED: _talk("asked for a call back", "要求稍后回电"),
        OutcomeCode.REFUSED_CONTACT: OutcomeMeaning(
            reached=True,
            effective=True,
            refused_contact=True,
            media=_ANY,
            name_en="refused further contact",
            name_zh="拒绝再被联系",
        ),
        OutcomeCode.ABUSIVE: _talk("abusive", "言语辱骂"),
        OutcomeCode.MESSAGE_DELIVERED: OutcomeMeaning(
            media=_MESSAGES, name_en="message delivered", name_zh="已送达"
        ),
        OutcomeCode.MESSAGE_FAILED: _missed("message failed", "发送失败", _MESSAGES),
        OutcomeCode.MESSAGE_BOUNCED: _missed("message bounced or returned", "被退回", _MESSAGES),
    }
)


def codes_where(**flags: bool) -> frozenset[OutcomeCode]:
    """Return the codes whose meaning has every given flag (``codes_where(right_party=True)``)."""
    return frozenset(
        code
        for code, meaning in OUTCOMES.items()
        if all(getattr(meaning, name) is value for name, value in flags.items())
    )


RIGHT_PARTY_CODES = codes_where(right_party=True)
CONVERSATIONS = codes_where(conversation=True)
FAILED_TO_REACH = codes_where(failed_to_reach=True)
REFUSALS = codes_where(refused_contact=True)


class OutcomeRefused(ValueError):
    """An outcome that cannot be recorded: an unknown code or one the channel cannot have."""


# The outcome names the contact gate took before the contact log, read as codes. Older
# names read the same way for the gate and for scoring as they did: "refused" is a refusal
# of further contact by whoever answered, and a "conversation" reached whoever was called.
def _legacy(name: str, party: Party, medium: Medium) -> OutcomeCode | None:
    written = medium is Medium.WRITTEN
    if name == "conversation":
        return OutcomeCode.RIGHT_PARTY if party is Party.DEBTOR else OutcomeCode.THIRD_PARTY
    if name == "refused":
        return OutcomeCode.REFUSED_CONTACT
    if name in ("unreachable", "failed"):
        if written:
            return OutcomeCode.MESSAGE_FAILED
        return OutcomeCode.SWITCHED_OFF if medium is Medium.VOICE else OutcomeCode.NO_ANSWER
    if name == "delivered" and written:
        return OutcomeCode.MESSAGE_DELIVERED
    # "planned", or "delivered" on a call or visit: made, with no outcome known.
    return None


LEGACY_OUTCOMES = ("conversation", "refused", "unreachable", "failed", "delivered", "planned")
# The older name of cancelling: "the contact was not made".
NOT_MADE = "not_made"


@dataclass(frozen=True, slots=True)
class Report:
    """What a report of an attempt sets: its new status and its outcome code, if any."""

    status: AttemptStatus
    outcome: OutcomeCode | None


def read_report(name: str, *, party: Party, channel: Channel) -> Report:
    """Return what an outcome name (a code, or an older name) records for an attempt."""
    if name == NOT_MADE:
        return Report(AttemptStatus.CANCELLED, None)
    if name in LEGACY_OUTCOMES:
        return Report(AttemptStatus.MADE, _legacy(name, party, CHANNELS[channel].medium))
    try:
        code = OutcomeCode(name)
    except ValueError:
        raise OutcomeRefused(
            f"unknown outcome {name!r}; use one of {', '.join(OUTCOME_NAMES)}"
        ) from None
    problem = outcome_problem(code, channel)
    if problem is not None:
        raise OutcomeRefused(problem)
    return Report(AttemptStatus.MADE, code)


OUTCOME_NAMES: tuple[str, ...] = (*(code.value for code in OutcomeCode), NOT_MADE)
# Every name the outcome API accepts: the codes, "not_made" and the older names.
ACCEPTED_OUTCOME_NAMES: tuple[str, ...] = (*OUTCOME_NAMES, *LEGACY_OUTCOMES)


def outcome_problem(outcome: OutcomeCode, channel: Channel) -> str | None:
    """Return why ``outcome`` cannot describe a contact on ``channel`` (None when it can)."""
    medium = CHANNELS[channel].medium
    meaning = OUTCOMES[outcome]
    if medium in meaning.media or medium is Medium.SELF_SERVICE:
        return None
    return f"outcome {outcome} does not describe a {CHANNELS[channel].name_en}"


def is_effective(outcome: OutcomeCode | None, *, stated: bool | None = None) -> bool:
    """Tell whether a made attempt counts as an effective call.

    The code decides; a caller may count an attempt the code does not (a stricter local
    reading) but may not uncount one it does. An attempt made with no outcome code counts,
    like a planned one, unless the caller says it did not connect.
    """
    if outcome is None:
        return True if stated is None else stated
    counted = OUTCOMES[outcome].effective
    if stated is False and counted:
        raise OutcomeRefused(
            f"outcome {outcome} is an effective call; leave 'effective' out or set it to true"
        )
    return counted or bool(stated)


class AttemptTransitionRefused(ValueError):
    """An attempt cannot move from its status to the one asked for."""


_TRANSITIONS: Mapping[AttemptStatus, frozenset[AttemptStatus]] = MappingProxyType(
    {
        AttemptStatus.PLANNED: frozenset(
            {AttemptStatus.MADE, AttemptStatus.CANCELLED, AttemptStatus.EXPIRED}
        ),
        # A late report still says what happened to an attempt nobody reported in time.
        AttemptStatus.EXPIRED: frozenset({AttemptStatus.MADE, AttemptStatus.CANCELLED}),
        AttemptStatus.MADE: frozenset(),
        AttemptStatus.CANCELLED: frozenset(),
    }
)


def transition(current: AttemptStatus, wanted: AttemptStatus) -> AttemptStatus:
    """Return ``wanted`` if an attempt in ``current`` may move there; refuse otherwise."""
    if wanted not in _TRANSITIONS[current]:
        raise AttemptTransitionRefused(f"the contact is already {current}")
    return wanted


def holds_slots(status: AttemptStatus) -> bool:
    """Tell whether an attempt in ``status`` counts against the debtor's caps."""
    return status is not AttemptStatus.CANCELLED


def expired(status: AttemptStatus, *, expires_at: datetime | None, now: datetime) -> bool:
    """Tell whether a planned attempt has passed its expiry unreported."""
    return status is AttemptStatus.PLANNED and expires_at is not None and expires_at <= now


class ConsentKind(StrEnum):
    """A contact point's standing on a channel: consent given, or an opt-out."""

    CONSENT = "consent"
    OPT_OUT = "opt_out"


@dataclass(frozen=True, slots=True)
class ChannelStanding:
    """What a contact point allows: the channels opted out of and those consented to."""

    opted_out: frozenset[Channel] = frozenset()
    consented: frozenset[Channel] = frozenset()


def channel_standing(rows: Iterable[tuple[str, str]]) -> ChannelStanding:
    """Return the standing from ``(channel, kind)`` rows of one contact point."""
    opted_out: set[Channel] = set()
    consented: set[Channel] = set()
    for channel, kind in rows:
        (opted_out if kind == ConsentKind.OPT_OUT else consented).add(Channel(channel))
    return ChannelStanding(opted_out=frozenset(opted_out), consented=frozenset(consented))


# The contact import's flag columns and the (channel, kind) rows each one stands for.
IMPORT_FLAGS: Mapping[str, tuple[ConsentKind, frozenset[Channel]]] = MappingProxyType(
    {
        "opt_out_call": (ConsentKind.OPT_OUT, frozenset({Channel.CALL, Channel.AI_CALL})),
        "opt_out_sms": (ConsentKind.OPT_OUT, frozenset({Channel.SMS})),
        "opt_out_email": (ConsentKind.OPT_OUT, frozenset({Channel.EMAIL})),
        "consent_automated": (ConsentKind.CONSENT, CONSENT_CHANNELS),
    }
)


def import_flags(standing: ChannelStanding) -> dict[str, bool]:
    """Return the import flag columns a standing reads as (a flag holds when all its rows do)."""
    flags = {}
    for flag, (kind, channels) in IMPORT_FLAGS.items():
        held = standing.opted_out if kind is ConsentKind.OPT_OUT else standing.consented
        flags[flag] = channels <= held
    return flags
