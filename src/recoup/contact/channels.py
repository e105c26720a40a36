"""The channels Recoup reaches people through, and what each one is (pure data).

Adding a channel is one entry here (a ``Channel`` member and its ``ChannelProperties``),
plus its entries in the rule packs (``compliance/packs/*.json``: hours, caps, opt-outs) and
its labels in the web catalogs; ``CONVENTIONS.md`` walks through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Channel(StrEnum):
    """How a collector reaches someone, or how a debtor reaches the institution."""

    CALL = "call"
    AI_CALL = "ai_call"
    SMS = "sms"
    EMAIL = "email"
    VISIT = "visit"
    LETTER = "letter"
    WEB = "web"


class Medium(StrEnum):
    """The kind of exchange a channel carries."""

    VOICE = "voice"
    WRITTEN = "written"
    IN_PERSON = "in_person"
    SELF_SERVICE = "self_service"


class CostUnit(StrEnum):
    """What one contact on a channel costs by (the institution prices each unit)."""

    CALL = "call"
    MESSAGE = "message"
    VISIT = "visit"
    LETTER = "letter"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelProperties:
    """What a channel is: its medium, who drives it, what it needs and what it costs."""

    medium: Medium
    # A machine speaks or sends on it, with no agent on the line.
    automated: bool
    # Automated use on a mobile needs the contact point's prior consent (US-TCPA, CN-PI).
    needs_consent: bool
    # The institution starts contacts on it, so each one passes the gate first. A channel
    # that is not outbound only carries contacts the debtor starts (logged as inbound).
    outbound: bool
    cost_unit: CostUnit
    # The contact point kinds it reaches (``ContactKind`` values).
    contact_kinds: frozenset[str]
    name_en: str
    plural_en: str
    name_zh: str
    # What a collector does on it, as a Chinese verb phrase for the gate's reasons.
    verb_zh: str

    @property
    def real_time(self) -> bool:
        """Tell whether a person is spoken to as it happens (voice or in person)."""
        return self.medium in (Medium.VOICE, Medium.IN_PERSON)


_PHONES = frozenset({"mobile", "landline"})

CHANNELS: Mapping[Channel, ChannelProperties] = MappingProxyType(
    {
        Channel.CALL: ChannelProperties(
            medium=Medium.VOICE,
            automated=False,
            needs_consent=True,
            outbound=True,
            cost_unit=CostUnit.CALL,
            contact_kinds=_PHONES,
            name_en="call",
            plural_en="calls",
            name_zh="电话",
            verb_zh="拨打催收电话",
        ),
        Channel.AI_CALL: ChannelProperties(
            medium=Medium.VOICE,
            automated=True,
            needs_consent=True,
            outbound=True,
            cost_unit=CostUnit.CALL,
            contact_kinds=_PHONES,
            name_en="AI voice call",
            plural_en="AI voice calls",
            name_zh="智能语音",
            verb_zh="拨打智能语音电话",
        ),
        Channel.SMS: ChannelProperties(
            medium=Medium.WRITTEN,
            automated=True,
            needs_consent=True,
            outbound=True,
            cost_unit=CostUnit.MESSAGE,
            contact_kinds=frozenset({"mobile"}),
            name_en="text message",
            plural_en="text messages",
            name_zh="短信",
            verb_zh="发送催收短信",
        ),
        Channel.EMAIL: ChannelProperties(
            medium=Medium.WRITTEN,
            automated=True,
            needs_consent=False,
            outbound=True,
            cost_unit=CostUnit.MESSAGE,
            contact_kinds=frozenset({"email"}),
            name_en="email",
            plural_en="emails",
            name_zh="电子邮件",
            verb_zh="发送催收邮件",
        ),
        Channel.VISIT: ChannelProperties(
            medium=Medium.IN_PERSON,
            automated=False,
            needs_consent=False,
            outbound=True,
            cost_unit=CostUnit.VISIT,
            contact_kinds=frozenset({"address"}),
            name_en="field visit",
            plural_en="field visits",
            name_zh="上门",
            verb_zh="上门催收",
        ),
        Channel.LETTER: ChannelProperties(
            medium=Medium.WRITTEN,
            automated=False,
            needs_consent=False,
            outbound=True,
            cost_unit=CostUnit.LETTER,
            contact_kinds=frozenset({"address"}),
            name_en="letter",
            plural_en="letters",
            name_zh="信函",
            verb_zh="寄送催收信函",
        ),
        Channel.WEB: ChannelProperties(
            medium=Medium.SELF_SERVICE,
            automated=True,
            needs_consent=False,
            outbound=False,
            cost_unit=CostUnit.NONE,
            contact_kinds=frozenset(),
            name_en="self-service page",
            plural_en="self-service visits",
            name_zh="自助服务页面",
            verb_zh="通过自助服务页面联系",
        ),
    }
)


def channels_where(
    *, medium: Medium | None = None, outbound: bool | None = None
) -> frozenset[Channel]:
    """Return the channels of a medium and/or direction."""
    return frozenset(
        channel
        for channel, properties in CHANNELS.items()
        if (medium is None or properties.medium is medium)
        and (outbound is None or properties.outbound is outbound)
    )


# Channels the gate decides on: every contact the institution starts.
OUTBOUND_CHANNELS = channels_where(outbound=True)
VOICE_CHANNELS = channels_where(medium=Medium.VOICE)
WRITTEN_CHANNELS = channels_where(medium=Medium.WRITTEN)
# Channels where a person is spoken to as it happens: what "calling hours" cover.
REAL_TIME_CHANNELS = frozenset(c for c, properties in CHANNELS.items() if properties.real_time)
# Channels whose automated use needs the contact point's prior consent.
CONSENT_CHANNELS = frozenset(c for c, properties in CHANNELS.items() if properties.needs_consent)

CHANNEL_NAMES_EN: Mapping[Channel, str] = {c: p.name_en for c, p in CHANNELS.items()}
CHANNEL_PLURALS_EN: Mapping[Channel, str] = {c: p.plural_en for c, p in CHANNELS.items()}
CHANNEL_NAMES_ZH: Mapping[Channel, str] = {c: p.name_zh for c, p in CHANNELS.items()}
CHANNEL_VERBS_ZH: Mapping[Channel, str] = {c: p.verb_zh for c, p in CHANNELS.items()}


def outbound_channel(value: str) -> Channel:
    """Return the outbound channel named ``value``; raise ``ValueError`` naming the choices."""
    try:
        channel = Channel(value)
    except ValueError:
        channel = None
    if channel is None or channel not in OUTBOUND_CHANNELS:
        choices = ", ".join(c.value for c in Channel if c in OUTBOUND_CHANNELS)
        raise ValueError(f"{value!r} is not a channel contacts are made on; use one of {choices}")
    return channel
