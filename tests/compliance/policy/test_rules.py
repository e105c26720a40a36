"""Institution policy may only be stricter than its rule pack."""

from __future__ import annotations

from datetime import time

import pytest

from recoup.compliance.policy.rules import (
    ChannelCap,
    ChannelHours,
    Policy,
    PolicyRejected,
    ensure_policy_allowed,
    preset_policy,
    validate_policy,
)
from recoup.compliance.rulepack import load_pack
from recoup.contact.channels import Channel

CN = load_pack("CN")
US = load_pack("US")


def call_hours(start: time, end: time, *channels: Channel) -> tuple[ChannelHours, ...]:
    return (ChannelHours(channels=frozenset(channels or {Channel.CALL}), start=start, end=end),)


class TestHours:
    def test_ending_calls_at_22_30_breaks_cn_hrs(self) -> None:
        violations = validate_policy(Policy(hours=call_hours(time(8), time(22, 30))), CN)
        assert [(v.rule_id, v.field) for v in violations] == [("CN-HRS", "hours[0].end")]
        assert "22:30" in violations[0].message.en
        assert "22:00" in violations[0].message.zh

    def test_starting_before_eight_breaks_us_hrs(self) -> None:
        violations = validate_policy(Policy(hours=call_hours(time(7, 30), time(20))), US)
        assert [v.rule_id for v in violations] == ["US-HRS"]

    def test_us_ending_at_21_30_is_refused(self) -> None:
        with pytest.raises(PolicyRejected, match="US-HRS"):
            ensure_policy_allowed(Policy(hours=call_hours(time(8), time(21, 30))), US)

    def test_stricter_hours_are_fine(self) -> None:
        assert validate_policy(Policy(hours=call_hours(time(9), time(21))), CN) == []

    def test_hours_for_ungoverned_channels_are_not_bounded(self) -> None:
        policy = Policy(hours=call_hours(time(7), time(23), Channel.LETTER))
        assert validate_policy(policy, CN) == []

    def test_reversed_hours_are_invalid(self) -> None:
        violations = validate_policy(Policy(hours=call_hours(time(21), time(9))), CN)
        assert violations
        assert violations[0].rule_id == "CN-HRS"


class TestLimits:
    def test_raising_the_cn_voice_cap_breaks_cn_freq_v(self) -> None:
        violations = validate_policy(Policy(max_effective_voice_calls_per_day=4), CN)
        assert [v.rule_id for v in violations] == ["CN-FREQ-V"]
        assert validate_policy(Policy(max_effective_voice_calls_per_day=2), CN) == []

    def test_us_seven_in_seven(self) -> None:
        assert [v.rule_id for v in validate_policy(Policy(max_calls_per_debt_in_window=8), US)] == [
            "US-7IN7"
        ]
        assert [v.rule_id for v in validate_policy(Policy(conversation_cooldown_days=3), US)] == [
            "US-7IN7"
        ]
        assert validate_policy(Policy(max_calls_per_debt_in_window=5), US) == []

    def test_third_party_evidence(self) -> None:
        assert [
            v.rule_id for v in validate_policy(Policy(third_party_min_failed_attempts=1), CN)
        ] == ["CN-TGT"]
        assert [v.rule_id for v in validate_policy(Policy(third_party_lookback_days=90), CN)] == [
            "CN-TGT"
        ]
        assert [v.rule_id for v in validate_policy(Policy(max_contacts_per_third_party=2), US)] == [
            "US-3P"
        ]
        assert validate_policy(Policy(max_contacts_per_third_party=2), CN) == []

    def test_us_dispute_pause_cannot_be_turned_off(self) -> None:
        assert [v.rule_id for v in validate_policy(Policy(pause_on_dispute=False), US)] == [
            "US-VAL"
        ]
        assert validate_policy(Policy(pause_on_dispute=False), CN) == []

    def test_negative_cap_is_invalid(self) -> None:
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.SMS}), limit=-1),))
        assert [v.rule_id for v in validate_policy(policy, CN)] == ["POL-CAP"]

    def test_several_violations_are_all_reported(self) -> None:
        policy = Policy(hours=call_hours(time(7), time(23)), max_effective_voice_calls_per_day=5)
        assert sorted(v.rule_id for v in validate_policy(policy, CN)) == [
            "CN-FREQ-V",
            "CN-HRS",
            "CN-HRS",
        ]


class TestPresets:
    def test_cn_consumer_finance_ends_calls_at_21(self) -> None:
        policy = preset_policy("consumer_finance", pack=load_pack("CN"))
        assert validate_policy(policy, CN) == []
        call_hours_ = [h for h in policy.hours if Channel.CALL in h.channels]
        assert call_hours_[0].end == time(21)
        assert Channel.AI_CALL in call_hours_[0].channels

    @pytest.mark.parametrize("preset", ["consumer_finance", "commercial_bank"])
    @pytest.mark.parametrize("jurisdiction", ["CN", "US"])
    def test_every_preset_fits_its_pack(self, preset: str, jurisdiction: str) -> None:
        policy = preset_policy(preset, pack=load_pack(jurisdiction))
        assert validate_policy(policy, load_pack(jurisdiction)) == []

    def test_unknown_preset(self) -> None:
        with pytest.raises(ValueError, match="consumer_finance"):
            preset_policy("payday", pack=CN)
