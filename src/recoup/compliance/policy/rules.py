"""Institution policy: an overlay on a rule pack that may only make it stricter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.kinds import RuleKind
from recoup.compliance.rulepack import LocalisedText, RulePack
from recoup.contact.channels import Channel, outbound_channel

# Who a policy's own hours answer to when the pack has no hours rule.
POLICY_HOURS_RULE = "POL-HOURS"
# What a policy that contradicts itself (hours ending before they start …) is refused under.
INVALID_POLICY = "POLICY"


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


@dataclass(frozen=True, slots=True)
class PackBound:
    """A policy field that a pack rule's parameter bounds; the policy may only be stricter."""

    field: str
    kind: RuleKind
    parameter: str
    # True: the policy may lower the pack's number (a limit); False: only raise it (a minimum).
    at_most: bool
    label: LocalisedText


POLICY_BOUNDS = (
    PackBound(
        "max_effective_voice_calls_per_day",
        RuleKind.DAILY_EFFECTIVE_CAP,
        "max_effective_calls_per_day",
        at_most=True,
        label=LocalisedText(zh="每日有效语音通话上限", en="Daily effective voice call limit"),
    ),
    PackBound(
        "max_calls_per_debt_in_window",
        RuleKind.ROLLING_CALL_CAP,
        "max_calls",
        at_most=True,
        label=LocalisedText(zh="七天内每笔债务致电上限", en="Calls per debt in seven days"),
    ),
    PackBound(
        "conversation_cooldown_days",
        RuleKind.ROLLING_CALL_CAP,
        "conversation_cooldown_days",
        at_most=False,
        label=LocalisedText(zh="通话后的静默天数", en="Days without calls after a conversation"),
    ),
    PackBound(
        "third_party_min_failed_attempts",
        RuleKind.THIRD_PARTY_LIMIT,
        "min_failed_attempts",
        at_most=False,
        label=LocalisedText(
            zh="联系第三方前需失败的次数", en="Failed attempts needed before a third-party contact"
        ),
    ),
    PackBound(
        "third_party_lookback_days",
        RuleKind.THIRD_PARTY_LIMIT,
        "max_lookback_days",
        at_most=True,
        label=LocalisedText(zh="失败尝试的回看天数", en="Look-back days for failed attempts"),
    ),
    PackBound(
        "max_contacts_per_third_party",
        RuleKind.THIRD_PARTY_LIMIT,
        "max_contacts_per_third_party",
        at_most=True,
        label=LocalisedText(zh="每个第三方的联系次数上限", en="Contacts per third party"),
    ),
)


def _violation(rule_id: str, field_name: str, zh: str, en: str) -> PolicyViolation:
    return PolicyViolation(rule_id=rule_id, field=field_name, message=LocalisedText(zh=zh, en=en))


def _check_hours(policy: Policy, pack: RulePack) -> list[PolicyViolation]:
    hours_rules = pack.rules_of(RuleKind.CONTACT_HOURS)
    violations: list[PolicyViolation] = []
    for index, hours in enumerate(policy.hours):
        where = f"hours[{index}]"
        if hours.start >= hours.end:
            violations.append(
                _violation(
                    hours_rules[0].id if hours_rules else INVALID_POLICY,
                    where,
                    f"时段 {hours.start:%H:%M}–{hours.end:%H:%M} 无效："
                    "开始必须早于结束且不得跨越午夜。",
                    f"Hours {hours.start:%H:%M}–{hours.end:%H:%M} are invalid: the start must "
                    "come before the end, within one day.",
                )
            )
            continue
        for rule in hours_rules:
            violations += _check_within(hours, where, rule.id, pack)
    for rule in hours_rules:
        if policy.honour_agreed_windows and not pack.bool_parameter(
            rule.id, "agreed_windows_allowed"
        ):
            violations.append(
                _violation(
                    rule.id,
                    "honour_agreed_windows",
                    f"{rule.id} 不允许凭与债务人的约定在静默时段联系。",
                    f"{rule.id} does not let an agreement with the debtor open quiet hours.",
                )
            )
    return violations


def _check_within(
    hours: ChannelHours, where: str, rule_id: str, pack: RulePack
) -> list[PolicyViolation]:
    pack_start = pack.time_parameter(rule_id, "start")
    pack_end = pack.time_parameter(rule_id, "end")
    governed = set(pack.names_parameter(rule_id, "channels"))
    if not any(channel.value in governed for channel in hours.channels):
        return []
    violations: list[PolicyViolation] = []
    if hours.start < pack_start:
        violations.append(
            _violation(
                rule_id,
                f"{where}.start",
                f"开始时间 {hours.start:%H:%M} 早于 {rule_id} 允许的 {pack_start:%H:%M}。",
                f"Start {hours.start:%H:%M} is earlier than {rule_id} allows ({pack_start:%H:%M}).",
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
    return violations


def _check_bound(policy: Policy, pack: RulePack, bound: PackBound) -> list[PolicyViolation]:
    proposed = getattr(policy, bound.field)
    rule = pack.rule_of(bound.kind)
    if proposed is None or rule is None:
        return []
    limit = pack.parameter(rule.id, bound.parameter)
    label = bound.label
    if bound.at_most and proposed < 0:
        return [
            _violation(
                rule.id, bound.field, f"{label.zh}不能为负数。", f"{label.en} cannot be negative."
            )
        ]
    if not isinstance(limit, int):
        return []
    if bound.at_most and proposed > limit:
        return [
            _violation(
                rule.id,
                bound.field,
                f"{label.zh} {proposed} 超过 {rule.id} 的上限 {limit}。",
                f"{label.en} {proposed} is above the {rule.id} limit of {limit}.",
            )
        ]
    if not bound.at_most and proposed < limit:
        return [
            _violation(
                rule.id,
                bound.field,
                f"{label.zh} {proposed} 低于 {rule.id} 的要求 {limit}。",
                f"{label.en} {proposed} is below the {rule.id} minimum of {limit}.",
            )
        ]
    return []


def validate_policy(policy: Policy, pack: RulePack) -> list[PolicyViolation]:
    """List every way the policy would loosen the pack, naming the rule it would break."""
    violations = _check_hours(policy, pack)
    for bound in POLICY_BOUNDS:
        violations += _check_bound(policy, pack, bound)
    validation = pack.rule_of(RuleKind.VALIDATION_NOTICE)
    if (
        validation is not None
        and pack.bool_parameter(validation.id, "pause_on_dispute")
        and policy.pause_on_dispute is False
    ):
        violations.append(
            _violation(
                validation.id,
                "pause_on_dispute",
                f"{validation.id} 要求异议核实完成前暂停催收，政策不能关闭。",
                f"{validation.id} requires pausing collection while a dispute is open; "
                "the policy cannot turn that off.",
            )
        )
    policy_cap = pack.rule_of(RuleKind.POLICY_CAP)
    for index, cap in enumerate(policy.channel_caps):
        if cap.limit < 0 or cap.days < 1 or not cap.channels:
            violations.append(
                _violation(
                    INVALID_POLICY if policy_cap is None else policy_cap.id,
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


def preset_policy(preset: str, *, pack: RulePack) -> Policy:
    """Return the starting policy the pack gives an institution preset (consumer_finance …)."""
    document = pack.presets.get(preset)
    if document is None:
        raise ValueError(
            f"no preset {preset!r} in rule pack {pack.code}; use {' or '.join(pack.presets)}"
        )
    return policy_from_document(document)


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
                channels=frozenset(outbound_channel(name) for name in item["channels"]),
                start=time.fromisoformat(item["start"]),
                end=time.fromisoformat(item["end"]),
            )
            for item in values["hours"]
        )
    if "channel_caps" in values:
        values["channel_caps"] = tuple(
            ChannelCap(
                channels=frozenset(outbound_channel(name) for name in item["channels"]),
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
        values["disabled_channels"] = frozenset(
            outbound_channel(c) for c in values["disabled_channels"]
        )
    if values.get("approved_agencies") is not None:
        values["approved_agencies"] = frozenset(values["approved_agencies"])
    for name in ("name", "version"):
        if name in values:
            values[name] = str(values[name])
    return Policy(**values)
