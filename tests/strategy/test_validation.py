"""Findings before activation: unreachable and overlapping segments, templates, channels."""

from __future__ import annotations

import pytest

from recoup.strategy.presets import PRESETS, preset_text
from recoup.strategy.rules import compile_strategy
from recoup.strategy.validation import (
    SegmentCount,
    Severity,
    ValidationContext,
    blocking,
    validate,
)

SEGMENTS = """\
name: Checks
segments:
  - code: early
    name: Early
    when: {field: bucket, op: in, value: [M1, M2]}
    steps: [{code: text, day: 0, channel: sms, template: Reminder}]
  - code: early_large
    name: Early and large
    when:
      all:
        - {field: bucket, op: eq, value: M1}
        - {field: balance, op: ge, value: 100000}
    steps: [{code: call, day: 0, channel: call, template: Call script}]
  - code: impossible
    name: Impossible
    when:
      all:
        - {field: days_past_due, op: gt, value: 60}
        - {field: days_past_due, op: lt, value: 30}
    steps: [{code: text, day: 0, channel: sms}]
  - code: late
    name: Late
    when: {field: days_past_due, op: ge, value: 60}
    steps: [{code: visit, day: 0, channel: visit}]
  - code: rest
    name: Everyone else
    steps: [{code: letter, day: 0, channel: letter, template: Letter}]
  - code: after
    name: After the catch-all
    when: {field: grade, op: eq, value: A}
    steps: [{code: text, day: 0, channel: sms}]
"""


def findings(text: str, context: ValidationContext | None = None, counts=None):
    return validate(compile_strategy(text), context or ValidationContext(), counts)


def by_code(items, code):
    return [f for f in items if f.code == code]


class TestSegments:
    def test_a_segment_an_earlier_one_covers_is_unreachable(self) -> None:
        [finding] = by_code(findings(SEGMENTS), "covered")
        assert finding.severity is Severity.ERROR
        assert finding.params == {"segment": "early_large", "earlier": "early"}
        assert finding.line == 9
        assert finding.field == "segments[1].when"

    def test_a_condition_nothing_meets(self) -> None:
        [finding] = by_code(findings(SEGMENTS), "never_matches")
        assert finding.params["segment"] == "impossible"
        assert finding.line == 16

    def test_a_segment_after_the_catch_all(self) -> None:
        [finding] = by_code(findings(SEGMENTS), "after_catch_all")
        assert finding.params == {"segment": "after", "catch_all": "rest"}

    def test_overlap_is_a_warning_naming_the_earlier_segments(self) -> None:
        [finding] = by_code(findings(SEGMENTS), "overlap")
        assert finding.severity is Severity.WARNING
        assert finding.params == {"segment": "late", "earlier": "early"}

    def test_disjoint_segments_do_not_overlap(self) -> None:
        text = SEGMENTS.replace("op: ge, value: 60}", "op: ge, value: 60}\n    # x")
        text = text.replace(
            "when: {field: days_past_due, op: ge, value: 60}",
            "when: {field: bucket, op: in, value: [M4, M5]}",
        )
        assert by_code(findings(text), "overlap") == []

    def test_no_catch_all_is_a_warning(self) -> None:
        text = SEGMENTS.split("  - code: rest")[0]
        assert by_code(findings(text), "no_catch_all")

    def test_today_s_counts_show_a_segment_others_take_entirely(self) -> None:
        counts = [SegmentCount(10, 10), SegmentCount(4, 0)] + [SegmentCount(0, 0)] * 4
        [finding] = by_code(findings(SEGMENTS, counts=counts), "shadowed_today")
        assert finding.params == {"segment": "early_large", "count": "4"}


class TestStepsAndChannels:
    CONTEXT = ValidationContext(
        approved_templates={"Reminder": "sms", "Letter": "sms"},
        other_templates={"Call script": "submitted"},
        disabled_channels=frozenset({"visit"}),
        always_blocked={"letter": "no letters"},
    )

    def test_templates_must_be_approved_for_the_step_s_channel(self) -> None:
        items = findings(SEGMENTS, self.CONTEXT)
        [pending] = by_code(items, "template_not_approved")
        assert pending.params["template"] == "Call script"
        assert pending.params["status"] == "submitted"
        assert pending.line == 13
        [wrong] = by_code(items, "template_channel")
        assert wrong.params["template_channel"] == "sms"
        assert wrong.field == "segments[4].steps[0].template"

    def test_an_unknown_template(self) -> None:
        text = SEGMENTS.replace("template: Reminder", "template: Nope")
        [finding] = by_code(findings(text, self.CONTEXT), "template_unknown")
        assert finding.params["template"] == "Nope"

    def test_channels_not_enabled_or_always_blocked(self) -> None:
        items = findings(SEGMENTS, self.CONTEXT)
        [disabled] = by_code(items, "channel_disabled")
        assert disabled.params["channel"] == "visit"
        [blocked] = by_code(items, "always_blocked")
        assert blocked.params["why"] == "no letters"

    def test_errors_block_activation_and_come_first(self) -> None:
        items = findings(SEGMENTS, self.CONTEXT)
        assert blocking(items)
        severities = [f.severity for f in items]
        assert severities == sorted(severities, key=lambda s: s is Severity.WARNING)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_have_no_errors_with_their_templates_approved(name: str) -> None:
    context = ValidationContext(
        approved_templates={"还款提醒短信": "sms", "逾期首次电话话术": "call"}
    )
    assert blocking(findings(preset_text(name), context)) == []
