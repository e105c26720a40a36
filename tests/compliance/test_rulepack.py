"""The shipped rule packs load, are complete and say where each rule comes from."""

from __future__ import annotations

import re
import string
from datetime import time

import pytest

from recoup.compliance.rulepack import RulePackError, load_pack, parse_pack

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
        rule = {"id": "X-1", "title": {"zh": "x", "en": "x"}, "messages": {}}
        raw = {
            "code": "X", "version": "1", "jurisdiction": "X", "default_timezone": "UTC",
            "holiday_country": "US", "title": {"zh": "x", "en": "x"}, "rules": [rule, rule],
        }  # fmt: skip
        with pytest.raises(RulePackError, match="repeats"):
            parse_pack(raw)

    def test_missing_translation(self) -> None:
        raw = {"code": "X", "version": "1", "rules": [{"id": "X-1", "title": {"zh": "x"}}]}
        with pytest.raises(RulePackError, match="zh and en"):
            parse_pack(raw)
