"""Templates and violations on a real database: review, four eyes, rendering, the queue."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.templates import service as templates_service
from recoup.kit.errors import Conflict, PermissionDenied, ValidationFailed
from recoup.models.compliance import (
    TemplateStatus,
)
from tests.factories import make_institution
from tests.identity.helpers import make_user

GOOD_SMS = "{{ debtor_name }}您好，您的账单已到期，请于{{ due_date }}前还款。"


class TestTemplates:
    def _template(self, session: Session, institution, author, body: str = GOOD_SMS):
        return templates_service.create_template(
            session,
            institution_id=institution.id,
            name="reminder",
            channel="sms",
            locale="zh-CN",
            audience="debtor",
            body=body,
            author=author.username,
            author_id=author.id,
        )

    def test_four_eyes_workflow(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="compliance_officer")
        reviewer = make_user(session, institution, role="compliance_officer")
        template = self._template(session, institution, author)
        with pytest.raises(PermissionDenied, match="not approved"):
            templates_service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id, values={}
            )
        templates_service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        with pytest.raises(Conflict, match="author cannot review"):
            templates_service.decide_template(
                session, institution_id=institution.id, template_id=template.id, approve=True,
                actor=author.username, actor_id=author.id,
            )  # fmt: skip
        approved = templates_service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=True,
            actor=reviewer.username, actor_id=reviewer.id, today=date(2025, 3, 3),
        )  # fmt: skip
        assert approved.status == TemplateStatus.approved
        assert approved.re_review_on == date(2026, 3, 3)
        text = templates_service.render_approved_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            values={"debtor_name": "张先生", "due_date": "3月10日"},
            today=date(2025, 3, 3),
        )
        assert text.startswith("张先生您好")
        with pytest.raises(PermissionDenied, match="re-review"):
            templates_service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id,
                values={"debtor_name": "x", "due_date": "y"}, today=date(2026, 3, 4),
            )  # fmt: skip

    def test_template_with_findings_cannot_be_approved(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="manager")
        reviewer = make_user(session, institution, role="compliance_officer")
        template = self._template(session, institution, author, body="再不还钱就让你坐牢")
        submitted = templates_service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        assert submitted.findings[0]["rule_id"] == "CN-LANG"
        with pytest.raises(Conflict, match="findings"):
            templates_service.decide_template(
                session, institution_id=institution.id, template_id=template.id, approve=True,
                actor=reviewer.username, actor_id=reviewer.id,
            )  # fmt: skip
        rejected = templates_service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=False,
            actor=reviewer.username, actor_id=reviewer.id, note="威胁用语",
        )  # fmt: skip
        assert rejected.status == TemplateStatus.rejected

    def test_sandbox_refuses_unsafe_templates(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="manager")
        reviewer = make_user(session, institution, role="compliance_officer")
        body = "{{ debtor_name.__class__.__mro__ }}"
        template = self._template(session, institution, author, body=body)
        templates_service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        templates_service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=True,
            actor=reviewer.username, actor_id=reviewer.id, today=date(2025, 3, 3),
        )  # fmt: skip
        with pytest.raises(ValidationFailed, match="unsafe"):
            templates_service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id,
                values={"debtor_name": "x"}, today=date(2025, 3, 3),
            )  # fmt: skip


class TestViolations:
    def test_note_scan_queues_violations(self, session: Session) -> None:
        institution = make_institution(session)
        rows = templates_service.scan_for_violations(
            session,
            institution_id=institution.id,
            text="客户说没钱，我告诉他不还钱就后果自负",
            locale="zh-CN",
            source="call_note",
            source_id="n1",
            debtor_id=None,
            actor="agent7",
        )
        assert [(r.category, r.rule_id) for r in rows] == [("threat", "CN-LANG")]
        resolved = templates_service.resolve_violation(
            session, institution_id=institution.id, violation_id=rows[0].id, confirmed=True,
            actor="officer",
        )  # fmt: skip
        assert resolved.status == "confirmed"
        with pytest.raises(Conflict):
            templates_service.resolve_violation(
                session, institution_id=institution.id, violation_id=rows[0].id, confirmed=False,
                actor="officer",
            )  # fmt: skip
