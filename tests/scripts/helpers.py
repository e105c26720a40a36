"""Test data for scripts: an institution with approved default scripts and a debtor's case."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases_service
from recoup.compliance.templates import service as templates_service
from recoup.models import Account, Debtor, Institution, User
from recoup.models.cases import Case
from recoup.models.compliance import MessageTemplate
from recoup.scripts import service
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import make_user


@dataclass
class ScriptWorld:
    institution: Institution
    manager: User
    officer: User
    agent: User
    debtor: Debtor
    account: Account
    case: Case
    scripts: list[MessageTemplate]

    def script(self, situation: str, locale: str = "zh-CN") -> MessageTemplate:
        return next(s for s in self.scripts if s.situation == situation and s.locale == locale)


def approve_defaults(
    session: Session, institution: Institution, manager: User, officer: User
) -> list[MessageTemplate]:
    """Draft the default scripts as the manager and approve them as the compliance officer."""
    drafted = service.seed_default_scripts(
        session, institution_id=institution.id, author=manager.username, author_id=manager.id
    )
    for script in drafted:
        templates_service.decide_template(
            session,
            institution_id=institution.id,
            template_id=script.id,
            approve=True,
            actor=officer.username,
            actor_id=officer.id,
        )
    return drafted


def script_world(session: Session, *, jurisdiction: str = "CN") -> ScriptWorld:
    """An institution with the default scripts approved and one debtor's open case, owned by
    an agent."""
    institution = make_institution(session, jurisdiction=jurisdiction)
    manager = make_user(session, institution, role="manager")
    officer = make_user(session, institution, role="compliance_officer")
    agent = make_user(session, institution, role="agent")
    scripts = approve_defaults(session, institution, manager, officer)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, days_past_due=40)
    cases_service.sync_cases(session, institution_id=institution.id)
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
    case.owner_id = agent.id
    session.flush()
    return ScriptWorld(institution, manager, officer, agent, debtor, account, case, scripts)
