"""Locale choice, formatting, catalogs and safe redirects of the web shell (no browser)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from importlib import resources

import pytest

from recoup.enums import AccountStatus, ContactKind, ContactStatus, Product, Relation
from recoup.identity.permissions import MATRIX, ROLES
from recoup.web import localization
from recoup.web.errors import PAGE_STATUSES
from recoup.web.navigation import NAVIGATION
from recoup.web.templating import safe_next


class TestLocaleChoice:
    def test_default_is_simplified_chinese(self) -> None:
        assert localization.negotiate(cookie=None, accept_language=None) == "zh-CN"

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("en-US,en;q=0.9", "en"),
            ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
            ("fr-FR,en;q=0.5,zh;q=0.4", "en"),
            ("de-DE,fr;q=0.8", "zh-CN"),
            ("en;q=0.2,zh-Hans;q=0.8", "zh-CN"),
            ("en;q=0", "zh-CN"),
            ("garbage;;q=abc,,", "zh-CN"),
        ],
    )
    def test_accept_language_picks_the_best_supported(self, header: str, expected: str) -> None:
        assert localization.negotiate(cookie=None, accept_language=header) == expected

    def test_the_language_switch_beats_the_browser(self) -> None:
        assert localization.negotiate(cookie="en", accept_language="zh-CN") == "en"
        assert localization.negotiate(cookie="zh-CN", accept_language="en-US") == "zh-CN"

    def test_an_unknown_cookie_falls_back_to_the_browser(self) -> None:
        assert localization.negotiate(cookie="xx", accept_language="en") == "en"


class TestFormatting:
    def test_money_in_chinese(self) -> None:
        assert localization.money(123_456, "CNY", "zh-CN") == "¥1,234.56"

    def test_money_in_english_names_the_yuan(self) -> None:
        assert localization.money(123_456, "CNY", "en") == "CN¥1,234.56"

    def test_missing_values_show_a_dash(self) -> None:
        assert localization.money(None, "CNY", "en") == "—"
        assert localization.day(None, "zh-CN") == "—"
        assert localization.moment(None, "zh-CN", "Asia/Shanghai") == "—"

    def test_dates(self) -> None:
        assert localization.day(date(2026, 11, 28), "zh-CN") == "2026年11月28日"
        assert localization.day(date(2026, 11, 28), "en") == "Nov 28, 2026"

    def test_moments_are_shown_in_the_viewers_zone(self) -> None:
        moment = datetime(2026, 11, 28, 16, 5, tzinfo=UTC)
        assert localization.moment(moment, "zh-CN", "Asia/Shanghai") == "2026年11月29日 00:05"
        assert (
            localization.moment(moment, "en", "America/New_York") == "Nov 28, 2026, 11:05\u202fAM"
        )

    def test_naive_moments_are_read_as_utc(self) -> None:
        naive = datetime(2026, 11, 28, 16, 5)
        assert localization.moment(naive, "zh-CN", "Asia/Shanghai") == "2026年11月29日 00:05"


class TestCatalogs:
    def test_both_languages_have_the_same_keys(self) -> None:
        assert set(localization.catalog("zh-CN")) == set(localization.catalog("en"))

    def test_placeholders_match_between_languages(self) -> None:
        chinese, english = localization.catalog("zh-CN"), localization.catalog("en")
        for key, text in chinese.items():
            assert set(re.findall(r"\{(\w+)\}", text)) == set(
                re.findall(r"\{(\w+)\}", english[key])
            ), key

    def test_every_key_named_in_a_template_exists(self) -> None:
        templates = resources.files("recoup.web").joinpath("templates")
        named: set[str] = set()
        pending = [templates]
        while pending:
            folder = pending.pop()
            for entry in folder.iterdir():
                if entry.is_dir():
                    pending.append(entry)
                elif entry.name.endswith(".html"):
                    text = entry.read_text(encoding="utf-8")
                    named.update(re.findall(r"""_\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", text))
        assert named, "no keys found: the pattern no longer matches the templates"
        assert named - set(localization.catalog("en")) == set()

    def test_every_generated_key_exists(self) -> None:
        generated = (
            [f"nav.{entry.key}" for entry in NAVIGATION]
            + [f"role.{role}" for role in ROLES]
            + [f"error.{status}.title" for status in PAGE_STATUSES]
            + [f"error.{status}.text" for status in PAGE_STATUSES]
            + [f"accounts.status.{status}" for status in AccountStatus]
            + [f"accounts.product.{product}" for product in Product]
            + [f"contacts.kind.{kind}" for kind in ContactKind]
            + [f"contacts.relation.{relation}" for relation in Relation]
            + [f"contacts.status.{status}" for status in ContactStatus]
            + [f"coming_soon.text.{key}" for key in ("imports", "compliance", "models")]
        )
        assert set(generated) - set(localization.catalog("en")) == set()
        assert set(generated) - set(localization.catalog("zh-CN")) == set()


class TestNavigation:
    def test_every_entry_names_a_known_permission(self) -> None:
        assert {entry.permission for entry in NAVIGATION} <= set(MATRIX)


class TestSafeNext:
    @pytest.mark.parametrize("target", ["/debtors", "/debtors?q=1&page=2", "/"])
    def test_paths_on_this_site_are_kept(self, target: str) -> None:
        assert safe_next(target) == target

    @pytest.mark.parametrize(
        "target",
        ["", "https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
    )
    def test_anything_else_goes_home(self, target: str) -> None:
        assert safe_next(target) == "/"
