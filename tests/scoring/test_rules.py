"""Segments and priority: pure rules over grade, bucket, balance and contact costs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.institutions.rules import PRESETS, preset_settings
from recoup.scoring.rules import (
    BANDS,
    KNOWN_BUCKETS,
    PROPENSITIES,
    STAGES,
    SegmentPolicy,
    SegmentSettingsInvalid,
    expected_recovery,
    policy_from_settings,
    priority,
    segment_of,
)

GRADES = ("A", "B", "C", "D", "E")
CONSUMER = policy_from_settings(preset_settings("consumer_finance")["scoring"])
BANK = policy_from_settings(preset_settings("commercial_bank")["scoring"])


class TestSegments:
    def test_an_early_small_account_with_a_good_grade_gets_a_text_message(self) -> None:
        segment = segment_of(grade="A", bucket="M1", balance_minor=50_000, policy=CONSUMER)
        assert segment.name == "early-high-small"
        assert segment.channel == "sms"

    def test_a_late_large_account_is_worked_by_a_field_visit(self) -> None:
        segment = segment_of(grade="D", bucket="M5", balance_minor=5_000_000, policy=CONSUMER)
        assert segment.name == "late-low-large"
        assert segment.channel == "visit"

    def test_balance_bands_follow_the_institution_preset(self) -> None:
        # ¥3,000 is small for a commercial bank, medium for a consumer-finance lender.
        assert (
            segment_of(grade="C", bucket="M2", balance_minor=300_000, policy=BANK).band == "small"
        )
        assert (
            segment_of(grade="C", bucket="M2", balance_minor=300_000, policy=CONSUMER).band
            == "medium"
        )

    @pytest.mark.parametrize(
        ("bucket", "stage"),
        [("M0", "early"), ("M1", "early"), ("M2", "mid"), ("M3", "mid"), ("M4", "late")],
    )
    def test_stages_by_bucket(self, bucket: str, stage: str) -> None:
        assert segment_of(grade="B", bucket=bucket, balance_minor=1, policy=CONSUMER).stage == stage

    def test_band_edges_are_half_open(self) -> None:
        policy = SegmentPolicy(small_balance_minor=100, large_balance_minor=1000)
        bands = [
            segment_of(grade="A", bucket="M1", balance_minor=amount, policy=policy).band
            for amount in (99, 100, 999, 1000)
        ]
        assert bands == ["small", "medium", "medium", "large"]

    def test_the_most_specific_channel_wins(self) -> None:
        policy = SegmentPolicy(
            channels={"late-low-large": "letter", "late-large": "visit", "default": "call"}
        )
        assert segment_of(grade="E", bucket="M6+", balance_minor=10**9, policy=policy).channel == (
            "letter"
        )
        assert segment_of(grade="A", bucket="M6+", balance_minor=10**9, policy=policy).channel == (
            "visit"
        )
        assert segment_of(grade="A", bucket="M2", balance_minor=10**9, policy=policy).channel == (
            "call"
        )

    @given(
        grade=st.sampled_from(GRADES),
        bucket=st.sampled_from(KNOWN_BUCKETS),
        balance=st.integers(min_value=0, max_value=10**12),
        preset=st.sampled_from(sorted(PRESETS)),
    )
    def test_every_account_lands_in_one_known_segment_with_a_costed_channel(
        self, grade: str, bucket: str, balance: int, preset: str
    ) -> None:
        policy = policy_from_settings(preset_settings(preset)["scoring"])
        segment = segment_of(grade=grade, bucket=bucket, balance_minor=balance, policy=policy)
        assert segment.stage in STAGES
        assert segment.propensity in PROPENSITIES
        assert segment.band in BANDS
        assert policy.contact_costs[segment.channel] > 0

    @given(
        bucket=st.sampled_from(KNOWN_BUCKETS),
        balance=st.integers(min_value=0, max_value=10**12),
    )
    def test_a_better_grade_never_lowers_the_propensity(self, bucket: str, balance: int) -> None:
        order = {name: rank for rank, name in enumerate(PROPENSITIES)}
        ranks = [
            order[
                segment_of(
                    grade=grade, bucket=bucket, balance_minor=balance, policy=CONSUMER
                ).propensity
            ]
            for grade in GRADES
        ]
        assert ranks == sorted(ranks)

    @given(
        grade=st.sampled_from(GRADES),
        bucket=st.sampled_from(KNOWN_BUCKETS),
        smaller=st.integers(min_value=0, max_value=10**10),
        extra=st.integers(min_value=0, max_value=10**10),
    )
    def test_a_larger_balance_never_falls_in_a_smaller_band(
        self, grade: str, bucket: str, smaller: int, extra: int
    ) -> None:
        order = {name: rank for rank, name in enumerate(BANDS)}
        low = segment_of(grade=grade, bucket=bucket, balance_minor=smaller, policy=BANK).band
        high = segment_of(grade=grade, bucket=bucket, balance_minor=smaller + extra, policy=BANK)
        assert order[high.band] >= order[low]


class TestPriority:
    def test_expected_recovery_per_unit_of_contact_cost(self) -> None:
        recovery = expected_recovery(probability=0.4, overdue_minor=100_000)
        assert recovery == 40_000
        assert (
            priority(expected_recovery_minor=recovery, channel="call", policy=CONSUMER)
            == 40_000 / 300
        )
        assert priority(expected_recovery_minor=recovery, channel="sms", policy=CONSUMER) == 8_000

    def test_a_cheaper_channel_ranks_the_same_recovery_higher(self) -> None:
        assert priority(expected_recovery_minor=1000, channel="sms", policy=CONSUMER) > priority(
            expected_recovery_minor=1000, channel="visit", policy=CONSUMER
        )

    @given(
        probability=st.floats(min_value=0, max_value=1),
        overdue=st.integers(min_value=-10, max_value=10**11),
        channel=st.sampled_from(["sms", "call", "ai_call", "visit", "letter"]),
    )
    def test_priority_is_never_negative_and_grows_with_probability(
        self, probability: float, overdue: int, channel: str
    ) -> None:
        recovery = expected_recovery(probability=probability, overdue_minor=overdue)
        assert 0 <= recovery <= max(overdue, 0)
        value = priority(expected_recovery_minor=recovery, channel=channel, policy=CONSUMER)
        assert value >= 0
        surer = expected_recovery(probability=min(1.0, probability + 0.1), overdue_minor=overdue)
        assert priority(expected_recovery_minor=surer, channel=channel, policy=CONSUMER) >= value

    def test_a_probability_outside_zero_and_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="probability"):
            expected_recovery(probability=1.2, overdue_minor=100)


class TestSettings:
    def test_empty_settings_take_the_defaults(self) -> None:
        assert policy_from_settings({}) == SegmentPolicy()
        assert policy_from_settings(None) == SegmentPolicy()

    def test_the_presets_differ_where_the_businesses_do(self) -> None:
        assert CONSUMER.large_balance_minor < BANK.large_balance_minor
        assert CONSUMER.channels != BANK.channels

    def test_a_channel_without_a_cost_is_refused(self) -> None:
        with pytest.raises(SegmentSettingsInvalid, match="'fax'"):
            policy_from_settings({"segment_channels": {"default": "fax"}})

    def test_bands_must_not_cross(self) -> None:
        with pytest.raises(SegmentSettingsInvalid, match="small_balance_minor"):
            policy_from_settings({"small_balance_minor": 10, "large_balance_minor": 5})

    def test_unknown_stage_names_are_refused(self) -> None:
        with pytest.raises(SegmentSettingsInvalid, match="very_late"):
            policy_from_settings({"segment_stage_buckets": {"very_late": ["M6+"]}})

    def test_a_default_channel_is_required(self) -> None:
        with pytest.raises(SegmentSettingsInvalid, match="default"):
            policy_from_settings({"segment_channels": {"early": "sms"}})
