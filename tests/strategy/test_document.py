"""Strategy documents: the schema's errors name the line and the field."""

from __future__ import annotations

import pytest

from recoup.strategy.document import DocumentInvalid, dump_document, load_document
from recoup.strategy.presets import PRESETS, UnknownPreset, preset_text
from recoup.strategy.rules import compile_strategy

GOOD = """\
name: Early
segments:
  - code: early
    name: Early buckets
    when: {field: bucket, op: in, value: [M1, M2]}
    steps:
      - {code: text, day: 0, channel: sms}
  - code: rest
    name: Everyone else
    steps:
      - {code: call, day: 2, channel: call, queue: standard}
"""


def problems_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        load_document(text)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


class TestReading:
    def test_a_good_document_reads_in_yaml_and_in_json(self) -> None:
        document = load_document(GOOD)
        assert [s.code for s in document.segments] == ["early", "rest"]
        as_json = document.model_dump_json(by_alias=True, exclude_defaults=True)
        assert load_document(as_json) == document
        assert load_document(dump_document(document)) == document

    def test_an_unknown_channel_names_its_line_and_field(self) -> None:
        text = GOOD.replace("channel: call", "channel: pigeon")
        [(line, field, message)] = problems_of(text)
        assert line == 11
        assert field == "segments[1].steps[0].channel"
        assert "'sms'" in message

    def test_a_number_field_given_text_says_how_to_write_it(self) -> None:
        text = GOOD.replace(
            "{field: bucket, op: in, value: [M1, M2]}", "{field: balance, op: gt, value: lots}"
        )
        [(line, field, message)] = problems_of(text)
        assert (line, field) == (5, "segments[0].when")
        assert "number" in message

    def test_an_unknown_field_lists_the_known_ones(self) -> None:
        text = GOOD.replace("field: bucket", "field: colour")
        [(line, _, message)] = problems_of(text)
        assert line == 5
        assert "unknown field 'colour'" in message
        assert "days_past_due" in message

    def test_an_unknown_bucket_value_is_refused(self) -> None:
        [(line, _, message)] = problems_of(GOOD.replace("[M1, M2]", "[M1, M9]"))
        assert line == 5
        assert "'M9' is not a bucket" in message

    def test_a_misspelt_key_is_an_unknown_field_on_its_line(self) -> None:
        [(line, field, message)] = problems_of(GOOD.replace("queue: standard", "queu: standard"))
        assert (line, field) == (11, "segments[1].steps[0].queu")
        assert "unknown field" in message

    def test_a_missing_field_is_required(self) -> None:
        [(line, field, message)] = problems_of(GOOD.replace("    name: Everyone else\n", ""))
        assert field == "segments[1].name"
        assert line == 8
        assert "required" in message

    def test_a_step_needs_a_day_or_a_trigger(self) -> None:
        [(line, _, message)] = problems_of(GOOD.replace("day: 2, ", ""))
        assert line == 11
        assert "day" in message
        assert "trigger" in message

    def test_broken_yaml_names_its_line(self) -> None:
        [(line, _, message)] = problems_of(
            GOOD.replace("steps:\n      - {code: call", "steps:\n  - {code: [call")
        )
        assert line is not None
        assert line >= 10
        assert "YAML" in message

    def test_an_empty_document_and_a_list_are_refused(self) -> None:
        assert "empty" in problems_of("")[0][2]
        assert "mapping" in problems_of("- a\n- b\n")[0][2]

    def test_repeated_segment_codes_are_refused(self) -> None:
        [(_, _, message)] = problems_of(GOOD.replace("code: rest", "code: early"))
        assert "early repeated" in message

    def test_experiment_shares_must_leave_the_champion_some(self) -> None:
        text = GOOD + (
            "    experiment:\n"
            "      code: trial\n"
            "      control: {code: control, percent: 60, steps: [{code: s, day: 0, channel: sms}]}\n"
            "      challengers:\n"
            "        - {code: other, percent: 40, steps: [{code: s, day: 0, channel: email}]}\n"
        )
        [(line, field, message)] = problems_of(text)
        assert field == "segments[1].experiment"
        assert line == 12
        assert "champion" in message


class TestPresets:
    @pytest.mark.parametrize("name", PRESETS)
    def test_every_preset_reads_and_compiles(self, name: str) -> None:
        compiled = compile_strategy(preset_text(name))
        assert compiled.segments[-1].when is None
        channels = {step.channel for step in compiled.steps}
        assert {"call", "letter"} <= channels

    def test_consumer_finance_is_digital_first_and_business_gets_phone_and_visits(self) -> None:
        compiled = compile_strategy(preset_text("consumer_finance"))
        business = compiled.segment("business")
        channels = {compiled.steps[i].channel for i in business.paths["champion"].step_indexes}
        assert {"call", "visit"} <= channels
        young = compiled.segment("young_digital")
        assert {compiled.steps[i].channel for i in young.paths["champion"].step_indexes} == {
            "sms",
            "email",
        }
        small = compiled.segment("low_balance")
        assert "ai_call" in {
            compiled.steps[i].channel for i in small.paths["champion"].step_indexes
        }

    def test_an_unknown_preset_names_the_known_ones(self) -> None:
        with pytest.raises(UnknownPreset, match="consumer_finance"):
            preset_text("bank")
