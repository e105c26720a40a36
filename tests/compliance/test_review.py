"""Script and template review: banned language in disguise, spans, and required elements."""

from __future__ import annotations

import pytest

from recoup.compliance.review import ReviewInputError, default_reviewer, review

GOOD_CN_LETTER = (
    "尊敬的{{ debtor_name }}：您在我司的借款合同（编号{{ contract_number }}）项下尚欠"
    "{{ balance }}元。依据合同约定及《民法典》相关法律规定，您有按期还款的义务，"
    "也享有知情等权利。您可通过App查询账户明细，还款方式：{{ repayment_account }}。"
    "如有异议，请联系{{ dispute_contact }}。客服电话：{{ creditor_phone }}。"
)


def zh(text: str, *, audience: str = "debtor", channel: str = "call") -> object:
    return review(text, locale="zh-CN", audience=audience, channel=channel)


def spans(result: object) -> list[tuple[str, str, str]]:
    return [(f.category, f.rule_id, f.text) for f in result.findings]  # type: ignore[attr-defined]


class TestChineseBannedLanguage:
    @pytest.mark.parametrize(
        ("text", "category", "matched"),
        [
            ("再不还钱就打死你", "violence", "打死你"),
            ("不还钱就后果自负", "threat", "不还钱就后果自负"),
            ("再不还款我们就上门找你家人", "threat", "再不还款我们就上门找你家人"),
            ("你这个老赖", "insult", "老赖"),
            ("我们会天天打给你直到你还钱", "harassment", "天天打"),
            ("请把钱转到我个人的银行卡", "deception", "转到我个人的银行卡"),
            ("我是公安局经侦大队的", "impersonation", "我是公安"),
            ("法院传票已经寄出", "false_legal", "法院传票"),
            ("影响子女上学", "false_legal", "影响子女上学"),
            ("你可以找亲戚借钱先还上", "borrow_pressure", "找亲戚借"),
        ],
    )
    def test_each_category(self, text: str, category: str, matched: str) -> None:
        result = zh(text)
        assert not result.passed  # type: ignore[attr-defined]
        found = [(c, t) for c, rule_id, t in spans(result) if rule_id == "CN-LANG"]
        assert any(c == category and matched in t for c, t in found), found

    def test_full_width_characters(self) -> None:
        result = zh("你个ＳＢ")
        assert spans(result) == [("insult", "CN-LANG", "ＳＢ")]

    def test_inserted_spaces_and_punctuation(self) -> None:
        text = "再不还就让你坐 . 牢"
        result = zh(text)
        finding = result.findings[0]  # type: ignore[attr-defined]
        assert finding.category == "false_legal"
        assert text[finding.start : finding.end] == "坐 . 牢"

    def test_traditional_characters(self) -> None:
        text = "這是法院傳票，再不還錢就坐牢"
        result = zh(text)
        assert ("false_legal", "CN-LANG", "法院傳票") in spans(result)
        assert ("false_legal", "CN-LANG", "坐牢") in spans(result)

    def test_pinyin_and_mixed_script(self) -> None:
        assert ("false_legal", "CN-LANG", "zuo lao") in spans(zh("再不还就 zuo lao"))
        assert ("false_legal", "CN-LANG", "坐lao") in spans(zh("等着坐lao吧"))
        assert ("insult", "CN-LANG", "sha bi") in spans(zh("你个sha bi"))
        assert ("insult", "CN-LANG", "傻B") in spans(zh("你个傻B"))

    def test_english_inside_a_chinese_script(self) -> None:
        result = zh("你就是个loser")
        assert ("insult", "CN-LANG", "loser") in spans(result)

    def test_offsets_are_exact_in_the_original(self) -> None:
        text = "您好！ 我 是 警 察，请配合"
        result = zh(text)
        finding = result.findings[0]  # type: ignore[attr-defined]
        assert finding.category == "impersonation"
        assert text[finding.start : finding.end] == finding.text
        assert finding.text.replace(" ", "") == "我是警察"

    def test_messages_tell_what_to_do(self) -> None:
        finding = zh("我是法院的").findings[0]  # type: ignore[attr-defined]
        assert "冒充" in finding.message_zh
        assert "Never pose as police" in finding.message_en

    def test_a_polite_reminder_passes(self) -> None:
        text = "{{ debtor_name }}您好，您的账单已到期，请于{{ due_date }}前还款，如已还款请忽略。"
        assert zh(text, channel="sms").passed  # type: ignore[attr-defined]


class TestEnglish:
    def en(self, text: str, **kwargs: str) -> object:
        return review(
            text, locale="en-US", audience=kwargs.get("audience", "debtor"),
            channel=kwargs.get("channel", "call"), kind=kwargs.get("kind"),
        )  # fmt: skip

    def test_threat_and_insult_map_to_us_rules(self) -> None:
        result = self.en("Pay now or else, you deadbeat.")
        assert spans(result) == [
            ("threat", "US-HARASS", "or else"),
            ("insult", "US-HARASS", "deadbeat"),
        ]

    def test_impersonation_and_false_legal_are_us_false(self) -> None:
        result = self.en("This is the sheriff. A warrant for your arrest is ready.")
        assert {rule for _, rule, _ in spans(result)} == {"US-FALSE"}
        assert {category for category, _, _ in spans(result)} == {"impersonation", "false_legal"}

    def test_borrow_pressure_is_unfair(self) -> None:
        assert ("borrow_pressure", "US-UNFAIR", "payday loan") in spans(
            self.en("Just get a payday loan.")
        )

    def test_words_inside_other_words_do_not_match(self) -> None:
        assert self.en("We value your skills and our policies.").passed  # type: ignore[attr-defined]

    def test_spaced_out_letters(self) -> None:
        result = self.en("you i d i o t")
        assert ("insult", "US-HARASS", "i d i o t") in spans(result)

    def test_full_width_english(self) -> None:
        assert ("insult", "US-HARASS", "ＩＤＩＯＴ") in spans(self.en("you ＩＤＩＯＴ"))

    def test_texts_need_an_opt_out(self) -> None:
        result = self.en("Hi {{ debtor_name }}, please call us.", channel="sms")
        assert spans(result) == [("missing_element", "US-MEDIUM", "opt_out")]
        assert self.en(
            "Hi {{ debtor_name }}, please call us. Reply STOP to opt out.", channel="sms"
        ).passed  # type: ignore[attr-defined]

    def test_validation_notice_elements(self) -> None:
        result = self.en("Dear {{ debtor_name }}, you owe {{ balance }}.", channel="letter",
                         kind="validation_notice")  # fmt: skip
        missing = {f.text for f in result.findings}  # type: ignore[attr-defined]
        assert missing == {"creditor_name", "dispute_rights", "collector_contact"}


class TestThirdPartyAudience:
    def test_disclosure_to_a_contact_person(self) -> None:
        text = "请转告张三尽快回电，他的欠款已经逾期"
        result = zh(text, audience="third_party")
        assert spans(result) == [
            ("disclosure", "CN-TGT", "欠款"),
            ("disclosure", "CN-TGT", "逾期"),
        ]

    def test_the_same_words_are_fine_for_the_debtor(self) -> None:
        assert zh("您的欠款已经逾期，请尽快还款", channel="sms").passed  # type: ignore[attr-defined]

    def test_balance_placeholder_discloses(self) -> None:
        result = zh("请转告他尽快处理{{ balance }}", audience="third_party")
        assert [f.category for f in result.findings] == ["disclosure"]  # type: ignore[attr-defined]

    def test_neutral_message_passes(self) -> None:
        assert zh("您好，请转告张三先生回电 95555，谢谢。", audience="third_party").passed  # type: ignore[attr-defined]

    def test_us_third_party(self) -> None:
        result = review(
            "Please tell John to call us about his overdue loan.",
            locale="en-US", audience="third_party", channel="call",
        )  # fmt: skip
        assert {rule for _, rule, _ in spans(result)} == {"US-3P"}


class TestCollectionLetters:
    def test_complete_letter_passes(self) -> None:
        result = zh(GOOD_CN_LETTER, channel="letter")
        assert result.passed, spans(result)  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("remove", "element"),
        [
            ("{{ debtor_name }}", "debtor_name"),
            ("{{ balance }}", "balance"),
            ("如有异议，请联系{{ dispute_contact }}。", "how_to_dispute"),
            ("客服电话：{{ creditor_phone }}。", "creditor_contact"),
            ("也享有知情等权利。", "rights_and_duties"),
        ],
    )
    def test_each_missing_element_is_reported(self, remove: str, element: str) -> None:
        result = zh(GOOD_CN_LETTER.replace(remove, ""), channel="letter")
        missing = [f for f in result.findings if f.category == "missing_element"]  # type: ignore[attr-defined]
        assert [f.text for f in missing] == [element]
        assert missing[0].rule_id == "CN-DISC"
        assert "缺少" in missing[0].message_zh

    def test_attribute_placeholders_count(self) -> None:
        letter = GOOD_CN_LETTER.replace("{{ debtor_name }}", "{{ debtor.name }}")
        assert zh(letter, channel="letter").passed  # type: ignore[attr-defined]

    def test_sms_is_not_held_to_letter_elements(self) -> None:
        assert zh("请尽快还款", channel="sms").passed  # type: ignore[attr-defined]


class TestInputs:
    def test_unknown_locale(self) -> None:
        with pytest.raises(ReviewInputError, match="zh-CN"):
            review("x", locale="fr-FR", audience="debtor", channel="sms")

    def test_unknown_channel(self) -> None:
        with pytest.raises(ReviewInputError, match="channel"):
            review("x", locale="zh-CN", audience="debtor", channel="fax")

    def test_explicit_jurisdiction_overrides_locale(self) -> None:
        result = review("你个傻逼", locale="zh-CN", audience="debtor", channel="call",
                        jurisdiction="US")  # fmt: skip
        assert result.rule_ids == ("US-HARASS",)

    def test_reviewer_is_built_once(self) -> None:
        assert default_reviewer() is default_reviewer()
        assert set(default_reviewer().versions) >= {"zh", "en", "categories"}

    def test_empty_text(self) -> None:
        assert review("", locale="zh-CN", audience="debtor", channel="sms").passed
