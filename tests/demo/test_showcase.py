"""A fresh demo shows every area with data: templates in each review state, approved call
scripts, gate decisions, violations, an import run with rejects and certificates — for each
demo institution."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.demo.service import seed_demo
from recoup.models import Institution
from recoup.models.compliance import (
    Certification,
    ComplianceViolation,
    ContactDecision,
    MessageTemplate,
)
from recoup.models.contact import ContactAttempt
from recoup.models.ingest import ImportReject, ImportRun

AS_OF = date(2026, 11, 28)


def test_every_area_has_data_on_first_start(session: Session) -> None:
    result = seed_demo(session, accounts=300, seed=7, as_of=AS_OF)
    for institution in session.scalars(select(Institution)):
        where = {"institution_id": institution.id}
        templates = session.scalars(select(MessageTemplate).filter_by(**where)).all()
        assert {str(template.status) for template in templates} == {
            "draft",
            "submitted",
            "approved",
            "rejected",
        }, institution.code
        decisions = session.scalars(select(ContactDecision).filter_by(**where)).all()
        assert {decision.allowed for decision in decisions} == {True, False}
        attempts = session.scalars(select(ContactAttempt).filter_by(**where)).all()
        assert {str(attempt.status) for attempt in attempts} >= {"planned", "made"}
        assert {attempt.outcome for attempt in attempts} >= {"promise_made", "no_answer"}
        assert any(attempt.direction == "inbound" for attempt in attempts)
        scripts = [template for template in templates if template.kind == "script"]
        assert len(scripts) == 18
        assert {str(script.status) for script in scripts} == {"approved"}
        assert any(attempt.script_id is not None for attempt in attempts)
        violations = session.scalars(select(ComplianceViolation).filter_by(**where)).all()
        assert {str(violation.status) for violation in violations} >= {"open", "confirmed"}
        runs = session.scalars(select(ImportRun).filter_by(**where)).all()
        assert len(runs) == 1
        assert runs[0].rejected > 0
        assert str(runs[0].status) == "completed"
        assert session.scalars(select(ImportReject).filter_by(run_id=runs[0].id)).first()
        assert session.scalars(select(Certification).filter_by(**where)).first()
    for outcome in result.institutions:
        assert outcome.counts["templates"] == 5
        assert outcome.counts["scripts"] == 18
        assert outcome.counts["contacts"] > 0
        assert outcome.counts["import_rejects"] > 0
