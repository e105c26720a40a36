"""The shipped rule packs load, are complete and say where each rule comes from."""

from __future__ import annotations

import re
import string
from datetime import time

import pytest

from recoup.compliance.gate.rules import compile_gate
from recoup.compliance.kinds import RuleKind
from recoup.compliance.policy.rules import preset_policy
from recoup.compliance.rulepack import PACK_CODES, RulePackError, load_pack, parse_pack
from recoup.models.institution import Jurisdiction

CN_RULES = {"CN-HRS", "CN-FREQ-V", "CN-TGT", "CN-LANG", "CN-REC", "CN-DISC", "CN-OUT", "CN-PI"}
US_RULES = {
    "US-HRS", "US-INCONV", "US-ATTY", "US-WORK", "US-7IN7", "US-CEASE", "US-MEDIUM",
    "US-3P", "US-VAL", "US-SOL", "US-PASSIVE", "US-RET", "US-TCPA",
}  # fmt: skip


class TestShippedPacks:
    @pytest.mark.parametrize(("code", "rules"), [("CN", CN_RULES), ("US", US_RULES)])
    def test_required_rules_are_present(self, code: str, rules: set[str]) -> None:
        pack = load_pack(code)
        assert rules <= {rule.id for rule in pack.rules}
        assert re.fullmatch(r"\d{4}\.\d+", pack.version)

    @pytest.mark.parametrize("code", ["CN", "US"])
    def test_every_rule_has_citation_and_bilingual_messages(self, code: str) -> None:
        for rule in load_pack(code).rules:
            assert rule.citation, rule.id
            assert rule.title.zh
            assert rule.title.en
            assert rule.messages, rule.id
            for message in rule.messages.values():
                zh_fields = {f for _, f, _, _ in string.Formatter().parse(message.zh) if f}
                en_fields = {f for _, f, _, _ in string.Formatter().parse(message.en) if f}
                assert {f for f in zh_fields if not f.endswith("_zh")} <= en_fields | {
                    "channel_verb_zh"
                }, rule.id

    def test_parameters(self) -> None:
        cn = load_pack("CN")
        assert cn.time_parameter("CN-HRS", "end") == time(22)
        assert cn.int_parameter("CN-FREQ-V", "max_effective_calls_per_day") == 3
        us = load_pack("US")
        assert us.time_parameter("US-HRS", "end") == time(21)
        assert us.int_parameter("US-7IN7", "max_calls") == 7

    def test_packs_are_frozen(self) -> None:
        pack = load_pack("CN")
        with pytest.raises(AttributeError):
            pack.version = "x"  # type: ignore[misc]
        with pytest.raises(TypeError):
            pack.rule("CN-HRS").parameters["end"] = "23:00"  # type: ignore[index]

    def test_load_is_cached(self) -> None:
        assert load_pack("CN") is load_pack("cn")


class TestErrors:
    def test_unknown_pack(self) -> None:
        with pytest.raises(RulePackError, match="known packs"):
            load_pack("UK")

    def test_unknown_rule_and_parameter(self) -> None:
        pack = load_pack("CN")
        with pytest.raises(RulePackError, match="no rule"):
            pack.rule("CN-NOPE")
        with pytest.raises(RulePackError, match="no parameter"):
            pack.parameter("CN-HRS", "nope")
        with pytest.raises(RulePackError, match="integer"):
            pack.int_parameter("CN-HRS", "start")

    def test_duplicate_rule_ids(self) -> None:
        rule = {"id": "X-1", "kind": "conduct", "title": {"zh": "x", "en": "x"}, "messages": {}}
        raw = {
            "code": "X", "version": "1", "jurisdiction": "X", "default_timezone": "UTC",
            "holiday_country": "US", "title": {"zh": "x", "en": "x"}, "rules": [rule, rule],
        }  # fmt: skip
        with pytest.raises(RulePackError, match="repeats"):
            parse_pack(raw)

    def test_missing_translation(self) -> None:
        raw = {
            "code": "X", "version": "1", "rules": [{"id": "X-1", "kind": "conduct", "title": {"zh": "x"}}],
        }  # fmt: skip
        with pytest.raises(RulePackError, match="zh and en"):
            parse_pack(raw)


def _pack(*rules: dict[str, object], **fields: object) -> dict[str, object]:
    return {
        "code": "X", "version": "1", "jurisdiction": "CN", "default_timezone": "Asia/Shanghai",
        "holiday_country": "CN", "title": {"zh": "x", "en": "x"}, "rules": list(rules), **fields,
    }  # fmt: skip


def _hours(**parameters: object) -> dict[str, object]:
    return {
        "id": "X-HRS",
        "kind": "contact_hours",
        "title": {"zh": "x", "en": "x"},
        "parameters": {
            "start": "08:00", "end": "21:00", "channels": ["call"], "agreed_windows_allowed": True,
            **parameters,
        },
        "messages": {"quiet_hours": {"zh": "x", "en": "x"}},
    }  # fmt: skip


class TestKinds:
    @pytest.mark.parametrize("code", PACK_CODES)
    def test_every_rule_of_every_pack_declares_a_known_kind(self, code: str) -> None:
        for rule in load_pack(code).rules:
            assert isinstance(rule.kind, RuleKind), rule.id
            assert rule.source in {"law", "policy"}

    def test_every_pack_is_a_jurisdiction_an_institution_can_choose(self) -> None:
        assert set(PACK_CODES) == {str(jurisdiction) for jurisdiction in Jurisdiction}

    @pytest.mark.parametrize("code", PACK_CODES)
    @pytest.mark.parametrize("preset", ["consumer_finance", "commercial_bank"])
    def test_every_preset_of_every_pack_compiles_into_a_gate(self, code: str, preset: str) -> None:
        pack = load_pack(code)
        gate = compile_gate(pack, preset_policy(preset, pack=pack))
        assert gate.pack is pack

    def test_a_valid_pack_loads(self) -> None:
        pack = parse_pack(_pack(_hours()))
        (rule,) = pack.rules_of(RuleKind.CONTACT_HOURS)
        assert pack.time_parameter(rule.id, "end") == time(21)
        assert pack.rule_of(RuleKind.WORKPLACE) is None

    @pytest.mark.parametrize(
        ("rule", "words"),
        [
            ({**_hours(), "kind": "curfew"}, "pack X rule X-HRS: kind 'curfew' is not one"),
            (_hours(end="25:00"), "pack X rule X-HRS parameter end must be a time of day"),
            (_hours(channels=["fax"]), "pack X rule X-HRS parameter channels names unknown"),
            (_hours(agreed_windows_allowed="yes"), "parameter agreed_windows_allowed must be true"),
            (_hours(until="21:00"), "pack X rule X-HRS: a contact_hours rule takes no parameter"),
            ({**_hours(), "messages": {}}, "X-HRS: a contact_hours rule needs the message quiet"),
            ({**_hours(), "source": "rumour"}, "X-HRS: source must be law or policy"),
        ],
    )
    def test_a_bad_rule_is_refused_naming_pack_rule_and_field(
        self, rule: dict[str, object], words: str
    ) -> None:
        with pytest.raises(RulePackError, match=re.escape(words)):
            parse_pack(_pack(rule))

    def test_a_missing_parameter_is_named(self) -> None:
        rule = _hours()
        del rule["parameters"]["end"]  # type: ignore[attr-defined]
        with pytest.raises(
            RulePackError, match="X-HRS: a contact_hours rule needs the parameter end"
        ):
            parse_pack(_pack(rule))

    def test_a_count_is_a_whole_number_of_zero_or_more(self) -> None:
        rule = {
            "id": "X-CAP", "kind": "daily_effective_cap", "title": {"zh": "x", "en": "x"},
            "parameters": {"max_effective_calls_per_day": -1, "channels": ["call"]},
            "messages": {"daily_cap": {"zh": "x", "en": "x"}},
        }  # fmt: skip
        with pytest.raises(RulePackError, match="max_effective_calls_per_day must be a whole"):
            parse_pack(_pack(rule))

    def test_a_stop_rule_needs_a_message_per_status_and_one_rule_per_status(self) -> None:
        stop = {
            "id": "X-STOP", "kind": "stop_status", "title": {"zh": "x", "en": "x"},
            "parameters": {"statuses": ["deceased"]}, "messages": {},
        }  # fmt: skip
        with pytest.raises(RulePackError, match="needs the message deceased"):
            parse_pack(_pack(stop))
        stop["messages"] = {"deceased": {"zh": "x", "en": "x"}}
        again = {**stop, "id": "X-STOP-2"}
        with pytest.raises(RulePackError, match="X-STOP and X-STOP-2 both stop contact on"):
            parse_pack(_pack(stop, again))

    def test_a_pack_has_one_rule_of_a_single_kind(self) -> None:
        workplace = {
            "id": "X-WORK", "kind": "workplace", "title": {"zh": "x", "en": "x"},
            "messages": {"workplace": {"zh": "x", "en": "x"}},
        }  # fmt: skip
        with pytest.raises(RulePackError, match="X-WORK and X-WORK-2 are both workplace rules"):
            parse_pack(_pack(workplace, {**workplace, "id": "X-WORK-2"}))


class TestExtends:
    def test_an_extending_pack_keeps_replaces_and_adds_rules(self) -> None:
        base = parse_pack(_pack(_hours(), presets={"consumer_finance": {"name": "base"}}))
        tighter = _hours(end="20:00")
        added = {**_hours(), "id": "X-LOCAL-HRS"}
        child = parse_pack(
            {
                "code": "Y",
                "version": "2",
                "title": {"zh": "y", "en": "y"},
                "rules": [tighter, added],
            },
            base,
        )
        assert [rule.id for rule in child.rules] == ["X-HRS", "X-LOCAL-HRS"]
        assert child.time_parameter("X-HRS", "end") == time(20)
        assert (child.code, child.jurisdiction, child.default_timezone) == (
            "Y",
            "CN",
            "Asia/Shanghai",
        )
        assert child.presets["consumer_finance"]["name"] == "base"

    def test_the_regional_pack_is_the_national_one_plus_its_own_rule(self) -> None:
        national, regional = load_pack("CN"), load_pack("CN-LOCAL")
        assert {rule.id for rule in national.rules} < {rule.id for rule in regional.rules}
        (extra,) = {rule.id for rule in regional.rules} - {rule.id for rule in national.rules}
        assert regional.rule(extra).kind is RuleKind.CONTACT_HOURS
        assert regional.jurisdiction == "CN"
        assert regional.holiday_country == "CN"
