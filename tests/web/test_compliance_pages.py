"""The compliance pages in headless Chromium: pack and policy, template review, decisions,
violations and certificates, driven by compliance officers, a team lead and an agent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.gate import service as gate_service
from recoup.compliance.templates import service as templates_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.identity import service as identity
from recoup.kit.clock import utcnow, zone
from recoup.models import Debtor, User
from tests.web.support import PASSWORD, LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser

SHANGHAI = zone("Asia/Shanghai")
THREAT = "请尽快还款，否则后果自负！"
CLEAN_SMS = (
    "您好，{{ debtor_name }}，您本期账单 {{ balance }} 元已到期，请及时还款。如有疑问请致电 95588。"
)
NOTE = "客户说下周还，我告诉他再不还钱就等着瞧，客户挂断。"


@dataclass(frozen=True)
class ComplianceData:
    """What this module adds to the seeded database."""

    debtor_external_id: str
    other_debtor_external_id: str
    blocked_decisions: int
    allowed_decisions: int


def _user(session: Session, username: str) -> User:
    return session.execute(select(User).where(User.username == username)).scalar_one()


@pytest.fixture(scope="module")
def compliance_data(live_server: LiveServer) -> ComplianceData:
    """A second officer, a team with certificates, gate decisions and a scanned note."""
    with database_session(live_server) as session:
        debtor = session.get(Debtor, live_server.seeded.debtor_id)
        other = session.get(Debtor, live_server.seeded.unassigned_debtor_id)
        assert debtor is not None
        assert other is not None
        institution_id = debtor.institution_id
        identity.create_user(
            session,
            username="compliance-officer-2",
            role="compliance_officer",
            institution_id=institution_id,
            password=PASSWORD,
            display_name="第二合规专员",
            actor="test",
        )
        team_lead = _user(session, "team-lead")
        today = utcnow().astimezone(SHANGHAI).date()
        team = {"agent": None, "agent-soon": 10, "agent-lapsed": -3}
        for username, expires_in in team.items():
            agent = (
                _user(session, username)
                if username == "agent"
                else identity.create_user(
                    session,
                    username=username,
                    role="agent",
                    institution_id=institution_id,
                    password=PASSWORD,
                    display_name=f"团队 {username}",
                    actor="test",
                )
            )
            agent.team_lead_id = team_lead.id
            if expires_in is not None:
                certifications_service.grant_certification(
                    session,
                    institution_id=institution_id,
                    user_id=agent.id,
                    course="催收合规培训",
                    issued_on=today - timedelta(days=365),
                    expires_on=today + timedelta(days=expires_in),
                    actor="test",
                )
        outsider = identity.create_user(
            session,
            username="agent-elsewhere",
            role="agent",
            institution_id=institution_id,
            password=PASSWORD,
            display_name="别组催收员",
            actor="test",
        )
        certifications_service.grant_certification(
            session,
            institution_id=institution_id,
            user_id=outsider.id,
            course="催收合规培训",
            issued_on=today - timedelta(days=360),
            expires_on=today + timedelta(days=5),
            actor="test",
        )
        # Tomorrow in Shanghai: a late call is blocked by CN-HRS, a morning call is allowed.
        tomorrow = today + timedelta(days=1)
        late = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 22, 30, tzinfo=SHANGHAI)
        morning = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, 0, tzinfo=SHANGHAI)
        checks = [(debtor, late), (debtor, morning), (other, late), (debtor, late)]
        blocked = allowed = 0
        for target, at in checks:
            checked = gate_service.check_contact(
                session,
                institution_id=institution_id,
                debtor_id=target.id,
                channel=Channel.CALL,
                party=Party.DEBTOR,
                at=at,
                actor="agent",
            )
            blocked += not checked.decision.allowed
            allowed += checked.decision.allowed
        templates_service.scan_for_violations(
            session,
            institution_id=institution_id,
            text=NOTE,
            locale="zh-CN",
            source="note",
            source_id="N-1001",
            debtor_id=debtor.id,
            actor="agent",
        )
        session.commit()
        return ComplianceData(
            debtor_external_id=debtor.external_id,
            other_debtor_external_id=other.external_id,
            blocked_decisions=blocked,
            allowed_decisions=allowed,
        )
    raise AssertionError("no session")


def _switch_user(page: Page, server: LiveServer, username: str, next_path: str) -> None:
    page.context.clear_cookies()
    log_in(page, server, username, next_path=next_path)


class TestPackAndPolicy:
    def test_officer_sees_the_pack_and_the_policy_in_force(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance")
        rules = page.locator("[data-testid=pack-rules]")
        expect(rules.locator("tr[data-rule=CN-HRS]")).to_contain_text("催收时段")
        expect(rules.locator("tr[data-rule=CN-HRS]")).to_contain_text("结束：22:00")
        expect(rules.locator("tr[data-rule=CN-FREQ-V]")).to_contain_text("每日有效通话上限：3")
        overrides = page.locator("[data-testid=policy-overrides]")
        expect(overrides).to_contain_text("08:00–21:00")
        expect(overrides).to_contain_text("CN-HRS")
        expect(page.locator("[data-testid=policy-name]")).to_contain_text("中国消费金融预设")
        expect(page.locator("[data-testid=stat-blocked] .stat-value")).to_have_text(
            str(compliance_data.blocked_decisions)
        )

    def test_a_looser_value_is_refused_naming_the_rule_and_approval_takes_four_eyes(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance")
        page.fill("#voice-end", "22:30")
        page.fill("#voice-cap", "5")
        page.click("[data-testid=propose-policy]")
        refusal = page.locator("[data-testid=policy-refusal]")
        expect(refusal).to_contain_text("CN-HRS")
        expect(refusal).to_contain_text("22:30")
        expect(refusal).to_contain_text("CN-FREQ-V")
        expect(page.locator("#voice-end")).to_have_value("22:30")
        expect(page.locator("[data-testid=no-proposals]")).to_be_visible()

        page.fill("#voice-end", "20:30")
        page.fill("#voice-cap", "2")
        page.fill("#policy-name", "更严格的电话时段")
        page.click("[data-testid=propose-policy]")
        expect(page.locator(".flash-list")).to_contain_text("另一位合规专员")
        proposal = page.locator("[data-testid=proposal-table] tr[data-version='1']")
        expect(proposal).to_contain_text("compliance-officer")
        proposal.locator("[data-testid=approve-policy]").click()
        expect(page.locator(".flash-list")).to_contain_text("提交人不能批准自己提交的政策")
        expect(page.locator("[data-testid=proposal-table] tr[data-version='1']")).to_be_visible()

        _switch_user(page, live_server, "compliance-officer-2", "/compliance")
        page.click("[data-testid=proposal-table] tr[data-version='1'] [data-testid=approve-policy]")
        expect(page.locator(".flash-list")).to_contain_text("已生效")
        expect(page.locator("[data-testid=policy-name]")).to_contain_text("更严格的电话时段")
        overrides = page.locator("[data-testid=policy-overrides]")
        expect(overrides).to_contain_text("08:00–20:30")
        expect(overrides).to_contain_text("每日有效语音通话上限")
        expect(page.locator("[data-testid=no-proposals]")).to_be_visible()


class TestTemplates:
    def test_the_editor_marks_a_threat_live_and_passes_a_clean_text(
        self, page: Page, live_server: LiveServer
    ) -> None:
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        log_in(page, live_server, "compliance-officer", next_path="/compliance/templates/new")
        expect(page.locator("[data-testid=review-empty]")).to_be_visible()
        page.fill("#template-name", "到期提醒短信")
        page.locator("#template-body").press_sequentially(THREAT, delay=10)
        mark = page.locator("[data-testid=review-result] mark[data-rule~='CN-LANG']")
        expect(mark).to_have_text("后果自负")
        assert "CN-LANG" in str(mark.get_attribute("title"))
        assert "威胁恐吓" in str(mark.get_attribute("title"))
        expect(page.locator("[data-testid=finding-list]")).to_contain_text("CN-LANG")

        page.locator("#template-body").fill("")
        page.locator("#template-body").press_sequentially(CLEAN_SMS[:20], delay=5)
        page.locator("#template-body").fill(CLEAN_SMS)
        page.locator("#template-body").press("End")
        expect(page.locator("[data-testid=review-passed]")).to_be_visible()
        expect(page.locator("[data-testid=review-result] mark")).to_have_count(0)

        page.select_option("#template-channel", "letter")
        missing = page.locator("[data-testid=missing-list]")
        expect(missing).to_contain_text("CN-DISC")
        expect(missing.locator("li[data-element=creditor_contact]")).to_be_visible()
        page.select_option("#template-channel", "sms")
        expect(page.locator("[data-testid=review-passed]")).to_be_visible()
        assert not [text for text in console_errors if "Content Security Policy" in text]

        page.click("[data-testid=save-template]")
        page.wait_for_url(re.compile(r".*/compliance/templates/\d+$"))
        expect(page.locator(".flash-list")).to_contain_text("到期提醒短信")
        expect(page.locator("[data-testid=template-status]")).to_have_text("草稿")
        page.click("[data-testid=submit-template]")
        expect(page.locator(".flash-list")).to_contain_text("已提交审核")
        expect(page.locator("[data-testid=template-status]")).to_have_text("待审核")

    def test_the_author_cannot_approve_and_another_officer_can(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance/templates/new")
        page.fill("#template-name", "四眼原则测试")
        page.fill("#template-body", CLEAN_SMS)
        page.click("[data-testid=save-template]")
        page.wait_for_url(re.compile(r".*/compliance/templates/\d+$"))
        template_path = page.url.removeprefix(live_server.url)
        page.click("[data-testid=submit-template]")
        expect(page.locator("[data-testid=template-status]")).to_have_text("待审核")

        page.goto(f"{live_server.url}/compliance/templates?status=submitted")
        template_id = template_path.rsplit("/", 1)[-1]
        item = page.locator(f"[data-testid=queue-item][data-template-id='{template_id}']")
        item.locator("input[name=note]").fill("自己批准自己")
        item.locator("[data-testid=approve-template]").click()
        expect(page.locator(".flash-list")).to_contain_text("author cannot review")
        expect(item).to_be_visible()

        _switch_user(page, live_server, "compliance-officer-2", "/compliance/templates")
        page.goto(f"{live_server.url}/compliance/templates?status=submitted")
        item = page.locator(f"[data-testid=queue-item][data-template-id='{template_id}']")
        item.locator("input[name=note]").fill("用语合规，同意使用")
        item.locator("[data-testid=approve-template]").click()
        expect(page.locator(".flash-list")).to_contain_text("已批准")
        expect(item).to_have_count(0)
        page.goto(f"{live_server.url}{template_path}")
        expect(page.locator("[data-testid=template-status]")).to_have_text("已批准")
        expect(page.locator("[data-testid=review-note]")).to_have_text("用语合规，同意使用")


class TestDecisionsLog:
    def test_filters_blocked_decisions_with_reasons_and_next_time(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance/decisions")
        rows = page.locator("[data-testid=decision-row]")
        expected_total = compliance_data.blocked_decisions + compliance_data.allowed_decisions
        expect(rows).to_have_count(expected_total)
        page.select_option("#outcome", "blocked")
        page.click("[data-testid=filter-decisions]")
        page.wait_for_url(re.compile(r".*outcome=blocked.*"))
        expect(rows).to_have_count(compliance_data.blocked_decisions)
        for row in rows.all():
            assert row.get_attribute("data-allowed") == "false"
            expect(row.locator("[data-testid=decision-reasons]")).to_contain_text("CN-HRS")
            expect(row.locator("[data-testid=next-allowed]")).not_to_have_text("—")
        page.fill("#debtor", compliance_data.other_debtor_external_id)
        page.click("[data-testid=filter-decisions]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(compliance_data.other_debtor_external_id)
        page.goto(f"{live_server.url}/compliance/decisions?rule_id=CN-FREQ-V")
        expect(page.locator("[data-testid=empty-state]")).to_be_visible()

    def test_next_allowed_time_is_shown_in_the_institution_zone(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "auditor", next_path="/compliance/decisions?outcome=blocked")
        cells = page.locator("[data-testid=decision-row] [data-testid=next-allowed]")
        expect(cells.first).to_contain_text("08:00", timeout=2_000)


class TestViolations:
    def test_a_scanned_note_is_listed_highlighted_and_resolved(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance/violations")
        row = page.locator("[data-testid=violation-row]").first
        expect(row.locator("[data-testid=violation-mark]")).to_contain_text("等着瞧")
        expect(row).to_contain_text("CN-LANG")
        expect(row).to_contain_text("N-1001")
        expect(row).to_contain_text(compliance_data.debtor_external_id)
        row.locator("input[name=note]").fill("已回听录音，确认违规，催收员需重新培训")
        row.locator("[data-testid=confirm-violation]").click()
        expect(page.locator(".flash-list")).to_contain_text("已确认违规")
        expect(page.locator("[data-testid=empty-state]")).to_be_visible()
        page.click("a[data-status=confirmed]")
        expect(page.locator("[data-testid=violation-status]")).to_have_text("已确认")
        expect(page.locator("[data-testid=resolution-note]")).to_contain_text("重新培训")


class TestCertifications:
    def test_granting_a_certificate_shows_it_valid(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "compliance-officer", next_path="/compliance/certifications")
        row = page.locator("[data-testid=certification-row][data-username=agent]")
        expect(row.locator("[data-testid=standing]")).to_have_text("无认证")
        expect(
            page.locator(
                "[data-testid=certification-row][data-username=agent-soon] [data-testid=standing]"
            )
        ).to_have_text("即将到期")
        page.select_option("#grant-user", label="Test agent (agent)")
        page.fill("#grant-expires", (date.today() + timedelta(days=400)).isoformat())
        page.click("[data-testid=grant-certification]")
        expect(page.locator(".flash-list")).to_contain_text("Test agent")
        expect(row.locator("[data-testid=standing]")).to_have_text("有效")

    def test_a_team_lead_sees_their_teams_expiring_certificates(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "team-lead", next_path="/compliance")
        panel = page.locator("[data-testid=expiring-panel]")
        expect(panel).to_contain_text("团队 agent-soon")
        expect(panel).to_contain_text("团队 agent-lapsed")
        expect(panel).not_to_contain_text("别组催收员")
        page.goto(f"{live_server.url}/compliance/certifications")
        usernames = [
            row.get_attribute("data-username")
            for row in page.locator("[data-testid=certification-row]").all()
        ]
        assert set(usernames) == {"agent", "agent-soon", "agent-lapsed"}
        expect(page.locator("[data-testid=grant-form]")).to_have_count(0)


class TestRefusals:
    @pytest.mark.parametrize(
        ("username", "path"),
        [
            ("agent", "/compliance"),
            ("agent", "/compliance/decisions"),
            ("agent", "/compliance/violations"),
            ("agent", "/compliance/certifications"),
            ("agent", "/compliance/templates/new"),
            ("team-lead", "/compliance/templates/new"),
            ("data-scientist", "/compliance/templates"),
        ],
    )
    def test_roles_without_the_permission_are_refused(
        self, page: Page, live_server: LiveServer, username: str, path: str
    ) -> None:
        log_in(page, live_server, username)
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None
        assert response.status == 403
        expect(page.locator("[data-testid=error-403]")).to_be_visible()

    def test_an_agent_reads_templates_without_links_to_compliance_pages(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "agent", next_path="/compliance/templates")
        expect(page.locator(".section-tabs a")).to_have_count(1)
        expect(page.locator("[data-testid=new-template]")).to_have_count(0)

    def test_an_auditor_reads_but_gets_no_forms(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData
    ) -> None:
        log_in(page, live_server, "auditor", next_path="/compliance")
        expect(page.locator("[data-testid=pack-rules]")).to_be_visible()
        expect(page.locator("[data-testid=policy-form]")).to_have_count(0)
        page.goto(f"{live_server.url}/compliance/violations?status=all")
        expect(page.locator("[data-testid=resolve-form]")).to_have_count(0)


class TestScreenshots:
    """Pages a person looks at; saved under $RECOUP_SCREENSHOT_DIR (default: a temporary folder)."""

    def test_compliance_pages_render_for_a_look(
        self, page: Page, live_server: LiveServer, compliance_data: ComplianceData, tmp_path: Path
    ) -> None:
        folder = Path(os.environ.get("RECOUP_SCREENSHOT_DIR") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        log_in(page, live_server, "compliance-officer", next_path="/compliance")
        page.fill("#voice-end", "23:00")
        page.click("[data-testid=propose-policy]")
        expect(page.locator("[data-testid=policy-refusal]")).to_be_visible()
        screenshot(page, folder / "compliance-overview.png", title="合规")
        page.goto(f"{live_server.url}/compliance/templates/new")
        page.fill("#template-name", "催收信函")
        page.select_option("#template-channel", "letter")
        page.locator("#template-body").press_sequentially(
            "{{ debtor_name }}：我是法院的，再不还钱后果自负，法院传票马上寄到。", delay=5
        )
        expect(page.locator("[data-testid=review-result] mark").first).to_be_visible()
        screenshot(page, folder / "compliance-editor.png", title="新建模板")
        for name, path, title in (
            ("compliance-templates", "/compliance/templates", "模板与话术"),
            ("compliance-review-queue", "/compliance/templates?status=submitted", "模板与话术"),
            ("compliance-decisions", "/compliance/decisions", "联系决策日志"),
            ("compliance-violations", "/compliance/violations?status=all", "违规队列"),
            ("compliance-certifications", "/compliance/certifications", "合规培训认证"),
        ):
            page.goto(f"{live_server.url}{path}")
            screenshot(page, folder / f"{name}.png", title=title)
        page.goto(f"{live_server.url}/lang?locale=en&next=/compliance/decisions?outcome=blocked")
        screenshot(page, folder / "compliance-decisions-en.png", title="Contact decisions log")
        page.goto(f"{live_server.url}/compliance")
        screenshot(page, folder / "compliance-overview-en.png", title="Compliance")
