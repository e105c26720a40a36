"""The words of the contact gate: channels, parties, outcomes and holiday modes."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a collector reaches someone."""

    CALL = "call"
    AI_CALL = "ai_call"
    SMS = "sms"
    EMAIL = "email"
    VISIT = "visit"
    LETTER = "letter"


class Party(StrEnum):
    """Who is contacted: the debtor or someone else (a contact person, 联系人)."""

    DEBTOR = "debtor"
    THIRD_PARTY = "third_party"


class Outcome(StrEnum):
    """What came of a past contact attempt."""

    CONVERSATION = "conversation"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    DELIVERED = "delivered"
    FAILED = "failed"
    PLANNED = "planned"
    # Recorded for a reserved contact that was never made: it stops counting.
    NOT_MADE = "not_made"


FAILED_TO_REACH = frozenset(
    {
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.VOICEMAIL,
        Outcome.WRONG_NUMBER,
        Outcome.UNREACHABLE,
        Outcome.FAILED,
    }
)


class HolidaySuppression(StrEnum):
    """Which days an institution keeps free of collection contact."""

    OFF = "off"
    PUBLIC_HOLIDAYS = "public_holidays"
    NON_WORKING_DAYS = "non_working_days"


CHANNEL_NAMES_EN = {
    Channel.CALL: "call",
    Channel.AI_CALL: "AI voice call",
    Channel.SMS: "text message",
    Channel.EMAIL: "email",
    Channel.VISIT: "field visit",
    Channel.LETTER: "letter",
}
CHANNEL_PLURALS_EN = {
    Channel.CALL: "calls",
    Channel.AI_CALL: "AI voice calls",
    Channel.SMS: "text messages",
    Channel.EMAIL: "emails",
    Channel.VISIT: "field visits",
    Channel.LETTER: "letters",
}
CHANNEL_NAMES_ZH = {
    Channel.CALL: "电话",
    Channel.AI_CALL: "智能语音",
    Channel.SMS: "短信",
    Channel.EMAIL: "电子邮件",
    Channel.VISIT: "上门",
    Channel.LETTER: "信函",
}
CHANNEL_VERBS_ZH = {
    Channel.CALL: "拨打催收电话",
    Channel.AI_CALL: "拨打智能语音电话",
    Channel.SMS: "发送催收短信",
    Channel.EMAIL: "发送催收邮件",
    Channel.VISIT: "上门催收",
    Channel.LETTER: "寄送催收信函",
}
