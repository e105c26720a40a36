"""Script and template review: banned language in disguise, spans, and required elements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.templates import service as templates_service
from recoup.compliance.templates.review import (
    ReviewInputError,
    ReviewResult,
    default_reviewer,
    review,
)
from tests.compliance.templates import review_variants
from tests.factories import make_institution

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
        assert missing == {
            "creditor_name",
            "itemization_date",
            "dispute_rights",
            "collector_contact",
        }


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


def _review(text: str, locale: str) -> ReviewResult:
    return review(text, locale=locale, audience="debtor", channel="call")


def _assert_flagged(result: ReviewResult, categories: set[str], rule_id: str) -> None:
    hits = [(f.category, f.rule_id, f.text) for f in result.findings]
    assert not result.passed, "nothing was found"
    assert any(c in categories and r == rule_id for c, r, _ in hits), hits


def _cases(name: str) -> list[Any]:
    locale = "en-US" if name.endswith("_EN") else "zh-TW" if name.endswith("_TW") else "zh-CN"
    return [
        pytest.param(text, locale, id=f"{name}-{index}")
        for index, text in enumerate(getattr(review_variants, name))
    ]


class TestVeiledThreats:
    """Menace without a violent verb: we know where you are, your family, your routine."""

    @pytest.mark.parametrize(
        ("text", "locale"), _cases("MENACE_ZH") + _cases("MENACE_TW") + _cases("MENACE_EN")
    )
    def test_flagged_as_a_threat(self, text: str, locale: str) -> None:
        rule_id = "US-HARASS" if locale == "en-US" else "CN-LANG"
        _assert_flagged(_review(text, locale), {"threat"}, rule_id)


class TestExposure:
    """Publishing the debtor's photo, name or debt, or blasting their contacts (爆通讯录)."""

    @pytest.mark.parametrize(
        ("text", "locale"), _cases("EXPOSE_ZH") + _cases("EXPOSE_TW") + _cases("EXPOSE_EN")
    )
    def test_flagged_as_harassment(self, text: str, locale: str) -> None:
        rule_id = "US-HARASS" if locale == "en-US" else "CN-LANG"
        _assert_flagged(_review(text, locale), {"harassment"}, rule_id)

    def test_the_span_covers_the_spaced_out_phrase(self) -> None:
        text = "再不还就 爆-通-讯-录"
        finding = _review(text, "zh-CN").findings[0]
        assert (finding.category, finding.text) == ("harassment", "爆-通-讯-录")
        assert text[finding.start : finding.end] == finding.text


class TestBorrowingElsewhere:
    """Pushing the debtor to borrow elsewhere to repay (以贷还贷, 借新还旧)."""

    @pytest.mark.parametrize(
        ("text", "locale"), _cases("BORROW_ZH") + _cases("BORROW_TW") + _cases("BORROW_EN")
    )
    def test_flagged_as_borrow_pressure(self, text: str, locale: str) -> None:
        rule_id = "US-UNFAIR" if locale == "en-US" else "CN-LANG"
        _assert_flagged(_review(text, locale), {"borrow_pressure"}, rule_id)


class TestArrestThreats:
    """Arrest, detention and criminal threats phrased without the obvious words."""

    @pytest.mark.parametrize(
        ("text", "locale"), _cases("ARREST_ZH") + _cases("ARREST_TW") + _cases("ARREST_EN")
    )
    def test_flagged_as_false_legal(self, text: str, locale: str) -> None:
        rule_id = "US-FALSE" if locale == "en-US" else "CN-LANG"
        _assert_flagged(_review(text, locale), {"false_legal"}, rule_id)

    @pytest.mark.parametrize(
        ("text", "locale", "matched"),
        [
            ("You will be \u0430rr\u0435sted tonight.", "en-US", "\u0430rr\u0435sted"),
            ("Go to \u03c1rison.", "en-US", "\u03c1rison"),
            ("再不还就 zuò láo", "zh-CN", "zuò láo"),
            ("等着 jù liú 吧", "zh-CN", "jù liú"),
            ("坐\u200b牢", "zh-CN", "坐\u200b牢"),
        ],
    )
    def test_lookalike_letters_tone_marks_and_hidden_characters(
        self, text: str, locale: str, matched: str
    ) -> None:
        found = [f.text for f in _review(text, locale).findings if f.category == "false_legal"]
        assert len(found) == 1
        assert matched in found[0]


class TestWorkplaceThreats:
    """Visiting the workplace or telling the boss, including pinyin mixes (去你gongsi)."""

    @pytest.mark.parametrize(
        ("text", "locale"), _cases("WORK_ZH") + _cases("WORK_TW") + _cases("WORK_EN")
    )
    def test_flagged(self, text: str, locale: str) -> None:
        rule_id = "US-HARASS" if locale == "en-US" else "CN-LANG"
        _assert_flagged(_review(text, locale), {"threat", "harassment"}, rule_id)


class TestLegitimateTexts:
    """Reminders, disclosures and promises not to do the banned things pass untouched."""

    @pytest.mark.parametrize(("text", "locale"), _cases("LEGITIMATE_ZH") + _cases("LEGITIMATE_EN"))
    def test_passes(self, text: str, locale: str) -> None:
        result = _review(text, locale)
        assert result.passed, [(f.category, f.text) for f in result.findings]

    @pytest.mark.parametrize(
        ("promise", "threat", "locale"),
        [
            ("我们绝不会曝光您的照片。", "我们会曝光你的照片。", "zh-CN"),
            ("理性借贷，请勿以贷养贷。", "你就以贷养贷吧。", "zh-CN"),
            ("我们不会去您的单位。", "我们会去你的单位。", "zh-CN"),
            ("我們絕不會把您的照片發到網上。", "我們會把你的照片發到網上。", "zh-TW"),
            ("We will never post your photo online.", "We will post your photo online.", "en-US"),
            ("We will not call your boss.", "We will call your boss.", "en-US"),
            ("You will not be taken into custody.", "You will be taken into custody.", "en-US"),
        ],
    )
    def test_a_promise_not_to_is_not_a_threat(self, promise: str, threat: str, locale: str) -> None:
        assert _review(promise, locale).passed
        assert not _review(threat, locale).passed


RENDERED_CN_LETTER = (
    "尊敬的张伟先生：您在我司的借款合同（编号HT2024001）项下尚欠人民币12,345.67元。"
    "依据合同约定及《民法典》相关法律规定，您有按期还款的义务，也享有知情等权利。"
    "您可通过App查询账户明细，还款方式：对公账户6222 0000 1111。"
    "如有异议，请联系客服。客服电话：95555。"
)


class TestRenderedLetters:
    """CN-DISC recognises the debtor's name and the balance written out, not only placeholders."""

    def test_a_rendered_letter_passes(self) -> None:
        result = zh(RENDERED_CN_LETTER, channel="letter")
        assert result.passed, spans(result)  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("name", "balance"),
        [
            ("尊敬的欧阳娜娜女士", "尚欠人民币12,345.67元"),
            ("借款人：王小明", "尚欠本息合计￥８，８００．００"),
            ("致 李四：", "逾期金额为5000元"),
            ("尊敬的客户张三", "欠款共计壹万贰仟元"),
            ("尊敬的陳大文先生", "尚欠港币折合人民币3,000元"),
        ],
    )
    def test_names_and_amounts_in_many_forms(self, name: str, balance: str) -> None:
        letter = RENDERED_CN_LETTER.replace("尊敬的张伟先生", name).replace(
            "尚欠人民币12,345.67元", balance
        )
        assert zh(letter, channel="letter").passed  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("old", "new", "element"),
        [
            ("尊敬的张伟先生", "尊敬的客户", "debtor_name"),
            ("尊敬的张伟先生", "您好", "debtor_name"),
            ("尚欠人民币12,345.67元", "尚有欠款未还", "balance"),
        ],
    )
    def test_a_generic_greeting_or_no_amount_is_still_missing(
        self, old: str, new: str, element: str
    ) -> None:
        result = zh(RENDERED_CN_LETTER.replace(old, new), channel="letter")
        missing = [f for f in result.findings if f.category == "missing_element"]  # type: ignore[attr-defined]
        assert [f.text for f in missing] == [element]

    def test_the_message_says_what_counts(self) -> None:
        letter = RENDERED_CN_LETTER.replace("尊敬的张伟先生", "尊敬的客户")
        finding = zh(letter, channel="letter").findings[0]  # type: ignore[attr-defined]
        assert "{{ debtor_name }}" in finding.message_en
        assert "Write it out" in finding.message_en
        assert "{{ debtor_name }}" in finding.message_zh
        assert "写明" in finding.message_zh

    def test_an_english_validation_notice_written_out(self) -> None:
        notice = (
            "Dear Mr. Smith, Acme Bank is the creditor. As of January 31, 2026, you owed "
            "$1,200.00. You owe $1,234.56. "
            "You may dispute this debt by 2026-01-31. Call us at 1-800-555-0100."
        )
        result = review(notice, locale="en-US", audience="debtor", channel="letter",
                        kind="validation_notice")  # fmt: skip
        assert result.passed, [f.text for f in result.findings]
        without = review(notice.replace("Acme Bank is the creditor. ", ""), locale="en-US",
                         audience="debtor", channel="letter", kind="validation_notice")  # fmt: skip
        assert [f.text for f in without.findings] == ["creditor_name"]


class TestJurisdiction:
    """The rules are those of the institution's pack, whatever language the text is in."""

    ENGLISH_SMS = "Hi, your payment of {{ balance }} is due on {{ due_date }}. Call us at 95555."

    def test_an_english_sms_under_cn_rules_needs_no_us_opt_out(self) -> None:
        under_cn = review(self.ENGLISH_SMS, locale="en-US", audience="debtor", channel="sms",
                          jurisdiction="CN")  # fmt: skip
        assert under_cn.passed
        under_us = review(self.ENGLISH_SMS, locale="en-US", audience="debtor", channel="sms",
                          jurisdiction="US")  # fmt: skip
        assert under_us.rule_ids == ("US-MEDIUM",)

    def test_english_threat_under_cn_rules_is_cn_lang(self) -> None:
        result = review("We know where you live.", locale="en-US", audience="debtor",
                        channel="call", jurisdiction="CN")  # fmt: skip
        assert result.rule_ids == ("CN-LANG",)

    def test_the_locale_is_still_checked(self) -> None:
        with pytest.raises(ReviewInputError, match="zh-CN"):
            review("x", locale="fr-FR", audience="debtor", channel="sms", jurisdiction="CN")

    def test_review_for_an_institution_uses_its_pack(self, session: Session) -> None:
        cn = make_institution(session)
        us = make_institution(session, jurisdiction="US", timezone="America/New_York",
                              currency="USD")  # fmt: skip
        arguments = {"text": self.ENGLISH_SMS, "locale": "en-US", "audience": "debtor",
                     "channel": "sms"}  # fmt: skip
        assert templates_service.review_for_institution(
            session, institution_id=cn.id, **arguments
        ).passed
        assert templates_service.review_for_institution(
            session, institution_id=us.id, **arguments
        ).rule_ids == ("US-MEDIUM",)

    def test_a_submitted_template_is_reviewed_under_the_institutions_pack(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        template = templates_service.create_template(
            session, institution_id=institution.id, name="overdue", channel="sms",
            locale="en-US", audience="debtor", body=self.ENGLISH_SMS + " Or else.",
            author="author", author_id=None,
        )  # fmt: skip
        submitted = templates_service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor="author", actor_id=None,
        )  # fmt: skip
        assert [f["rule_id"] for f in submitted.findings] == ["CN-LANG"]
