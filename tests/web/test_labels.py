"""Codes shown in words: policies, rule parameters, audit actions, fields, zones, bins, refusals."""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI
from fastapi.testclient import TestClient

from recoup.app import create_app
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.web import labels


class TestPolicyAndRules:
    def test_a_preset_policy_name_is_translated_and_a_chosen_one_kept(self) -> None:
        assert labels.policy_name("CN consumer finance", "zh-CN") == "中国消费金融预设"
        assert labels.policy_name("CN consumer finance", "en") == "CN consumer finance"
        assert labels.policy_name("更严格的电话时段", "zh-CN") == "更严格的电话时段"

    def test_rule_parameters_read_as_words(self) -> None:
        assert labels.parameter_name("start", "zh-CN") == "开始"
        assert labels.parameter_value(["call", "ai_call"], "zh-CN") == "电话、智能语音"
        assert labels.parameter_value(True, "zh-CN") == "是"
        assert labels.parameter_value(None, "zh-CN") == "—"
        assert (
            labels.parameter_value(["cease_contact", "deceased"], "zh-CN") == "要求停止联系、已故"
        )

    def test_an_unknown_code_is_shown_as_it_is(self) -> None:
        assert labels.parameter_name("brand_new_limit", "zh-CN") == "brand_new_limit"


class TestAuditAndFields:
    def test_audit_actions_and_objects(self) -> None:
        assert labels.audit_action("auth.login", "zh-CN") == "登录"
        assert labels.audit_action("auth.login", "en") == "Signed in"
        assert labels.audit_object("debtor", "zh-CN") == "债务人"

    def test_an_unknown_action_still_shows_its_code(self) -> None:
        assert labels.audit_action("users.something_new", "zh-CN") == "users.something_new"

    def test_import_columns_and_model_features(self) -> None:
        assert labels.field_name("birth_date", "zh-CN") == "出生日期"
        assert labels.field_name("payment_ratio_3m", "zh-CN") == "近3个月还款比例"
        assert labels.reject_code("bad_resident_id", "zh-CN") == "身份证号无效"

    def test_a_reject_reason_keeps_the_checks_english_for_english_readers(self) -> None:
        english = "the check digit does not match (GB 11643): the number was mistyped"
        assert labels.reject_reason(english, "bad_resident_id", "en") == english
        assert "身份证号" in labels.reject_reason(english, "bad_resident_id", "zh-CN")


class TestZonesAndLanguages:
    def test_a_zone_is_named_not_coded(self) -> None:
        assert labels.zone_name("Asia/Shanghai", "zh-CN") == "中国时间"
        assert labels.zone_name("America/New_York", "en") == "Eastern Time"
        assert labels.zone_name("Not/AZone", "zh-CN") == "Not/AZone"

    def test_zones_quoted_in_a_stored_message_are_named(self) -> None:
        message = "静默时段：债务人当地时间（Asia/Shanghai）现在是 23:00"
        assert (
            labels.zones_named(message, "zh-CN")
            == "静默时段：债务人当地时间（中国时间）现在是 23:00"
        )

    def test_a_language_code_is_named(self) -> None:
        assert labels.language_name("zh-CN", "zh-CN").startswith("中文")
        assert labels.language_name("en", "zh-CN") == "英语"
        assert labels.language_name("not a code", "zh-CN") == "not a code"


class TestScorecardBins:
    def test_numeric_bins_read_as_bounds_without_infinity(self) -> None:
        assert labels.interval(None, 25.0, "zh-CN") == "< 25"
        assert labels.interval(55.0, None, "zh-CN") == "≥ 55"
        assert labels.interval(656185.0, 2261140.0, "zh-CN") == "[656,185, 2,261,140)"

    def test_category_bins_use_each_locales_words(self) -> None:
        bands = ("under 25", "55 and over")
        assert labels.categories("age_band", bands, "zh-CN") == "25岁以下、55岁及以上"
        assert labels.categories("age_band", bands, "en") == "under 25, 55 and over"
        assert labels.categories("product", ("credit_card",), "zh-CN") == "信用卡"
        assert labels.bin_word("Missing", "zh-CN") == "缺失"


class TestRefusals:
    def test_a_refusal_with_a_message_key_is_said_in_the_readers_words(self) -> None:
        error = Conflict(
            "policy version 2 is already approved",
            message_key="compliance.error.policy_already_approved",
            message_params={"version": "2"},
        )
        assert labels.refusal(error, "zh-CN") == "政策第 2 版已经批准。"
        assert labels.refusal(error, "en") == "Policy version 2 is already approved."

    def test_any_other_refusal_gets_a_translated_lead_in(self) -> None:
        error = ValidationFailed("the name is too long")
        assert (
            labels.refusal(error, "zh-CN")
            == "输入未通过校验，系统说明（英文）：the name is too long"
        )
        assert labels.refusal(error, "zh-CN", lead=False) == "the name is too long"
        assert labels.refusal(error, "en") == "the name is too long"


def _app_refusing() -> FastAPI:
    app = create_app()

    @app.get("/refuse-in-words")
    def refuse_in_words() -> None:
        raise ValidationFailed(
            "a certificate must expire after it is issued",
            message_key="compliance.error.certificate_dates",
        )

    @app.get("/refuse-plainly")
    def refuse_plainly() -> None:
        raise ValidationFailed("the batch is empty")

    @app.get("/not-there")
    def not_there() -> None:
        raise NotFound("no template 7")

    return app


class TestErrorPage:
    HEADERS: ClassVar[dict[str, str]] = {"Accept": "text/html", "Accept-Language": "zh-CN"}

    def test_a_refused_page_says_why_in_chinese(self) -> None:
        with TestClient(_app_refusing()) as client:
            page = client.get("/refuse-in-words", headers=self.HEADERS)
            plain = client.get("/refuse-plainly", headers=self.HEADERS)
        assert page.status_code == 422
        assert "证书的到期日必须晚于颁发日。" in page.text
        assert "must expire" not in page.text
        assert "输入未通过校验，系统说明（英文）：the batch is empty" in plain.text

    def test_a_missing_record_page_tells_nothing_about_it(self) -> None:
        with TestClient(_app_refusing()) as client:
            page = client.get("/not-there", headers=self.HEADERS)
        assert page.status_code == 404
        assert "no template 7" not in page.text

    def test_api_clients_keep_the_english_problem(self) -> None:
        with TestClient(_app_refusing()) as client:
            problem = client.get("/refuse-in-words", headers={"Accept": "application/json"})
        assert problem.json()["detail"] == "a certificate must expire after it is issued"
        assert "message_key" not in problem.json()
