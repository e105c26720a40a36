"""Pure helpers of the compliance pages: marking findings in a text, certificate standing."""

from __future__ import annotations

from datetime import date

from recoup.compliance.service import certificate_standing
from recoup.compliance.views import Segment, highlight


class TestHighlight:
    def test_a_text_without_findings_is_one_plain_run(self) -> None:
        assert highlight("请按时还款", []) == [Segment("请按时还款", ())]

    def test_a_finding_is_cut_out_with_its_category_and_rule(self) -> None:
        text = "否则后果自负！"
        assert highlight(text, [(2, 6, "threat", "CN-LANG")]) == [
            Segment("否则", ()),
            Segment("后果自负", (("threat", "CN-LANG"),)),
            Segment("！", ()),
        ]

    def test_overlapping_findings_share_the_overlap(self) -> None:
        segments = highlight("abcdef", [(0, 4, "threat", "CN-LANG"), (2, 6, "insult", "CN-LANG")])
        assert [segment.text for segment in segments] == ["ab", "cd", "ef"]
        assert segments[1].marks == (("threat", "CN-LANG"), ("insult", "CN-LANG"))

    def test_empty_spans_mark_nothing_and_the_text_is_kept_whole(self) -> None:
        text = "您好，{{ debtor_name }}"
        segments = highlight(text, [(0, 0, "missing_element", "CN-DISC")])
        assert "".join(segment.text for segment in segments) == text
        assert all(not segment.marks for segment in segments)


class TestCertificateStanding:
    today = date(2026, 11, 28)

    def test_standings(self) -> None:
        assert certificate_standing(None, today=self.today) == "missing"
        assert certificate_standing(date(2026, 11, 27), today=self.today) == "expired"
        assert certificate_standing(date(2026, 11, 28), today=self.today) == "expiring"
        assert certificate_standing(date(2026, 12, 28), today=self.today) == "expiring"
        assert certificate_standing(date(2026, 12, 29), today=self.today) == "valid"
