"""Institution policy: an overlay on a rule pack that may only make it stricter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from recoup.compliance.enums import Channel, HolidaySuppression
from recoup.compliance.rulepack import LocalisedText, RulePack

VOICE_CHANNELS = frozenset({Channel.CALL, Channel.AI_CALL})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHours:
    """Local hours [start, end) in which an institution allows some channels."""

    channels: frozenset[Channel]
    start: time
    end: time


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCap:
    """At most limit attempts on these channels per debtor within days local calendar days."""

    channels: frozenset[Channel]
    limit: int
    days: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """An institution's own contact rules; None means "as the pack says"."""

    name: str = "pack defaults"
    version: str = "1"
    hours: tuple[ChannelHours, ...] = ()
    max_effective_voice_calls_per_day: int | None = None
    max_calls_per_debt_in_window: int | None = None
    conversation_cooldown_days: int | None = None
    channel_caps: tuple[ChannelCap, ...] = ()
    third_party_min_failed_attempts: int | None = None
    third_party_lookback_days: int | None = None
    max_contacts_per_third_party: int | None = None
    holiday_suppression: HolidaySuppression = HolidaySuppression.OFF
    blackout_dates: frozenset[date] = field(default_factory=frozenset)
    honour_agreed_windows: bool = True
    pause_on_dispute: bool | None = None
    disabled_channels: frozenset[Channel] = field(default_factory=frozenset)
    approved_agencies: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class PolicyViolation:
    """One way a proposed policy would loosen its rule pack."""

    rule_id: str
    field: str
    message: LocalisedText


class PolicyRejected(ValueError):
    """A policy tries to be looser than its rule pack."""

    def __init__(self, violations: list[PolicyViolation]) -> None:
        self.violations = violations
        details = "; ".join(f"{v.rule_id}: {v.message.en}" for v in violations)
        super().__init__(f"policy is looser than the rule pack: {details}")


def _hours_rule(pack: RulePack) -> str | None:
    for rule_id in ("CN-HRS", "US-HRS"):
        if pack.has(rule_id):
            return rule_id
    return None


def _third_party_rule(pack: RulePack) -> str | None:
    for rule_id in ("CN-TGT", "US-3P"):
        if pack.has(rule_id):
            return rule_id
    return None


def _violation(rule_id: str, field_name: str, zh: str, en: str) -> PolicyViolation:
    return PolicyViolation(rule_id=rule_id, field=field_name, message=LocalisedText(zh=zh, en=en))


def _check_hours(policy: Policy, pack: RulePack) -> list[PolicyViolation]:
    rule_id = _hours_rule(pack)
    violations: list[PolicyViolation] = []
    for index, hours in enumerate(policy.hours):
        where = f"hours[{index}]"
        if hours.start >= hours.end:
            violations.append(
                _violation(
                    rule_id or "POLICY",
                    where,
                    f"时段 {hours.start:%H:%M}–{hours.end:%H:%M} 无效："
                    "开始必须早于结束且不得跨越午夜。",
                    f"Hours {hours.start:%H:%M}–{hours.end:%H:%M} are invalid: the start must "
                    "come before the end, within one day.",
                )
            )
            continue
        if rule_id is None:
            continue
        pack_start = pack.time_parameter(rule_id, "start")
        pack_end = pack.time_parameter(rule_id, "end")
        governed = set(pack.names_parameter(rule_id, "channels"))
        if not any(channel.value in governed for channel in hours.channels):
            continue
        if hours.start < pack_start:
            violations.append(
                _violation(
                    rule_id,
                    f"{where}.start",
                    f"开始时间 {hours.start:%H:%M} 早于 {rule_id} 允许的 {pack_start:%H:%M}。",
                    f"Start {hours.start:%H:%M} is earlier than {rule_id} allows "
                    f"({pack_start:%H:%M}).",
                )
            )
        if hours.end > pack_end:
            violations.append(
                _violation(
                    rule_id,
                    f"{where}.end",
                    f"结束时间 {hours.end:%H:%M} 晚于 {rule_id} 允许的 {pack_end:%H:%M}。",
                    f"End {hours.end:%H:%M} is later than {rule_id} allows ({pack_end:%H:%M}).",
                )
            )
    if (
        rule_id is not None
        and policy.honour_agreed_windows
        and not pack.bool_parameter(rule_id, "agreed_windows_allowed")
    ):
        violations.append(
            _violation(
                rule_id,
                "honour_agreed_windows",
                f"{rule_id} 不允许凭与债务人的约定在静默时段联系。",
                f"{rule_id} does not let an agreement with the debtor open quiet hours.",
            )
        )
    return violations


def _check_at_most(
    *,
    proposed: int | None,
    bound: int | None,
    rule_id: str,
    field_name: str,
    label_zh: str,
    label_en: str,
) -> list[PolicyViolation]:
    if proposed is None:
        return []
    if proposed < 0:
        return [
            _violation(
                rule_id,
                field_name,
                f"{label_zh}不能为负数。",
                f"{label_en} cannot be negative.",
            )
        ]
    if bound is not None and proposed > bound:
        return [
            _violation(
                rule_id,
                field_name,
                f"{label_zh} {proposed} 超过 {rule_id} 的上限 {bound}。",
                f"{label_en} {proposed} is above the {rule_id} limit of {bound}.",
            )
        ]
    return []


def _check_at_least(
    *,
    proposed: int | None,
    bound: int,
    rule_id: str,
    field_name: str,
    label_zh: str,
    label_en: str,
) -> list[PolicyViolation]:
    if proposed is None or proposed >= bound:
        return []
    return [
        _violation(
            rule_id,
            field_name,
            f"{label_zh} {proposed} 低于 {rule_id} 的要求 {bound}。",
            f"{label_en} {proposed} is below the {rule_id} minimum of {bound}.",
        )
    ]


def validate_policy(policy: Policy, pack: RulePack) -> list[PolicyViolation]:
    """List every way the policy would loosen the pack, naming the rule it would break."""
    violations = _check_hours(policy, pack)
    if pack.has("CN-FREQ-V"):
        violations += _check_at_most(
            proposed=policy.max_effective_voice_calls_per_day,
            bound=pack.int_parameter("CN-FREQ-V", "max_effective_calls_per_day"),
            rule_id="CN-FREQ-V",
            field_name="max_effective_voice_calls_per_day",
            label_zh="每日有效语音通话上限",
            label_en="Daily effective voice call limit",
        )
    if pack.has("US-7IN7"):
        violations += _check_at_most(
            proposed=policy.max_calls_per_debt_in_window,
            bound=pack.int_parameter("US-7IN7", "max_calls"),
            rule_id="US-7IN7",
            field_name="max_calls_per_debt_in_window",
            label_zh="七天内每笔债务致电上限",
            label_en="Calls per debt in seven days",
        )
        violations += _check_at_least(
            proposed=policy.conversation_cooldown_days,
            bound=pack.int_parameter("US-7IN7", "conversation_cooldown_days"),
            rule_id="US-7IN7",
            field_name="conversation_cooldown_days",
            label_zh="通话后的静默天数",
            label_en="Days without calls after a conversation",
        )
    third_party_rule = _third_party_rule(pack)
    if third_party_rule is not None:
        violations += _check_at_least(
            proposed=policy.third_party_min_failed_attempts,
            bound=pack.int_parameter(third_party_rule, "min_failed_attempts"),
            rule_id=third_party_rule,
            field_name="third_party_min_failed_attempts",
            label_zh="联系第三方前需失败的次数",
            label_en="Failed attempts needed before a third-party contact",
        )
        violations += _check_at_most(
            proposed=policy.third_party_lookback_days,
            bound=pack.int_parameter(third_party_rule, "max_lookback_days"),
            rule_id=third_party_rule,
            field_name="third_party_lookback_days",
            label_zh="失败尝试的回看天数",
            label_en="Look-back days for failed attempts",
        )
        violations += _check_at_most(
            proposed=policy.max_contacts_per_third_party,
            bound=pack.optional_int_parameter(third_party_rule, "max_contacts_per_third_party"),
            rule_id=third_party_rule,
            field_name="max_contacts_per_third_party",
            label_zh="每个第三方的联系次数上限",
            label_en="Contacts per third party",
        )
    if (
        pack.has("US-VAL")
        and pack.bool_parameter("US-VAL", "pause_on_dispute")
        and policy.pause_on_dispute is False
    ):
        violations.append(
            _violation(
                "US-VAL",
                "pause_on_dispute",
                "US-VAL 要求异议核实完成前暂停催收，政策不能关闭。",
                "US-VAL requires pausing collection while a dispute is open; "
                "the policy cannot turn that off.",
            )
        )
    for index, cap in enumerate(policy.channel_caps):
        if cap.limit < 0 or cap.days < 1 or not cap.channels:
            violations.append(
                _violation(
                    "POL-CAP",
                    f"channel_caps[{index}]",
                    "渠道上限需要至少一个渠道、非负的次数和至少 1 天的周期。",
                    "A channel cap needs at least one channel, a limit of 0 or more and a "
                    "period of at least 1 day.",
                )
            )
    return violations


def ensure_policy_allowed(policy: Policy, pack: RulePack) -> None:
    """Raise PolicyRejected when the policy would loosen the pack."""
    violations = validate_policy(policy, pack)
    if violations:
        raise PolicyRejected(violations)


def preset_policy(preset: str, *, jurisdiction: str) -> Policy:
    """Return the starting policy for an institution preset (consumer_finance, commercial_bank)."""
    jurisdiction = jurisdiction.upper()
    if preset == "consumer_finance" and jurisdiction == "CN":
        return Policy(
            name="CN consumer finance",
            version="1",
            hours=(
                ChannelHours(
                    channels=frozenset({Channel.CALL, Channel.AI_CALL, Channel.VISIT}),
                    start=time(8, 0),
                    end=time(21, 0),
                ),
            ),
            pause_on_dispute=True,
        )
    if preset == "commercial_bank" and jurisdiction == "CN":
        return Policy(name="CN commercial bank", version="1", pause_on_dispute=True)
    if preset in {"consumer_finance", "commercial_bank"} and jurisdiction == "US":
        return Policy(name=f"US {preset.replace('_', ' ')}", version="1", pause_on_dispute=True)
    raise ValueError(
        f"no preset {preset!r} for {jurisdiction}; use consumer_finance or commercial_bank "
        "with CN or US"
    )


def policy_document(policy: Policy) -> dict[str, Any]:
    """Return the policy as a JSON-ready document."""
    return {
        "name": policy.name,
        "version": policy.version,
        "hours": [
            {
                "channels": sorted(channel.value for channel in hours.channels),
                "start": hours.start.strftime("%H:%M"),
                "end": hours.end.strftime("%H:%M"),
            }
            for hours in policy.hours
        ],
        "max_effective_voice_calls_per_day": policy.max_effective_voice_calls_per_day,
        "max_calls_per_debt_in_window": policy.max_calls_per_debt_in_window,
        "conversation_cooldown_days": policy.conversation_cooldown_days,
        "channel_caps": [
            {
                "channels": sorted(channel.value for channel in cap.channels),
                "limit": cap.limit,
                "days": cap.days,
            }
            for cap in policy.channel_caps
        ],
        "third_party_min_failed_attempts": policy.third_party_min_failed_attempts,
        "third_party_lookback_days": policy.third_party_lookback_days,
        "max_contacts_per_third_party": policy.max_contacts_per_third_party,
        "holiday_suppression": policy.holiday_suppression.value,
        "blackout_dates": sorted(day.isoformat() for day in policy.blackout_dates),
        "honour_agreed_windows": policy.honour_agreed_windows,
        "pause_on_dispute": policy.pause_on_dispute,
        "disabled_channels": sorted(channel.value for channel in policy.disabled_channels),
        "approved_agencies": (
            None if policy.approved_agencies is None else sorted(policy.approved_agencies)
        ),
    }


def policy_from_document(document: Mapping[str, Any]) -> Policy:
    """Build a policy from its JSON document; unknown keys are refused."""
    known = set(Policy.__dataclass_fields__)
    unknown = set(document) - known
    if unknown:
        raise ValueError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(document)
    if "hours" in values:
        values["hours"] = tuple(
            ChannelHours(
                channels=frozenset(Channel(name) for name in item["channels"]),
                start=time.fromisoformat(item["start"]),
                end=time.fromisoformat(item["end"]),
            )
            for item in values["hours"]
        )
    if "channel_caps" in values:
        values["channel_caps"] = tuple(
            ChannelCap(
                channels=frozenset(Channel(name) for name in item["channels"]),
                limit=int(item["limit"]),
                days=int(item.get("days", 1)),
            )
            for item in values["channel_caps"]
        )
    if "holiday_suppression" in values:
        values["holiday_suppression"] = HolidaySuppression(values["holiday_suppression"])
    if "blackout_dates" in values:
        values["blackout_dates"] = frozenset(
            date.fromisoformat(d) for d in values["blackout_dates"]
        )
    if "disabled_channels" in values:
        values["disabled_channels"] = frozenset(Channel(c) for c in values["disabled_channels"])
    if values.get("approved_agencies") is not None:
        values["approved_agencies"] = frozenset(values["approved_agencies"])
    for name in ("name", "version"):
        if name in values:
            values[name] = str(values[name])
    return Policy(**values)
