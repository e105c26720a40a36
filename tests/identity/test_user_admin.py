"""An admin resets passwords, deactivates users and changes roles: in the service, the CLI
and the web page; audited, sessions ended, and never leaving an institution without an admin."""

from __future__ import annotations

import re

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.identity import service
from recoup.identity.dependencies import CSRF_FIELD, SESSION_COOKIE, login_session
from recoup.identity.principal import principal_for_user
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.models import AuditEvent, User
from tests.factories import make_institution
from tests.identity.helpers import PASSWORD, bearer, client_for, make_user

NEW_PASSWORD = "Another-horse-77"
ENGLISH = {"Accept-Language": "en"}
runner = CliRunner()


def _actions(session: Session, user: User) -> list[str]:
    statement = select(AuditEvent.action).where(
        AuditEvent.object_type == "user",
        AuditEvent.object_id == str(user.id),
        AuditEvent.action.startswith("user."),
    )
    return list(session.scalars(statement.order_by(AuditEvent.id)))


class TestService:
    def test_reset_password_lets_the_user_in_with_the_new_one_only(self, session: Session) -> None:
        institution = make_institution(session)
        admin = make_user(session, institution, role="admin")
        agent = make_user(session, institution, role="agent")
        version = agent.session_version
        service.reset_password(
            session, user_id=agent.id, password=NEW_PASSWORD, actor=admin.username
        )
        assert agent.session_version == version + 1
        with pytest.raises(service.LoginFailed):
            service.authenticate(session, username=agent.username, password=PASSWORD, ip="t")
        signed_in = service.authenticate(
            session, username=agent.username, password=NEW_PASSWORD, ip="t"
        )
        assert signed_in.id == agent.id
        assert "user.password_reset" in _actions(session, agent)

    def test_a_weak_new_password_is_refused(self, session: Session) -> None:
        agent = make_user(session, make_institution(session), role="agent")
        with pytest.raises(ValidationFailed, match="12 characters"):
            service.reset_password(session, user_id=agent.id, password="short", actor="cli")

    def test_deactivation_ends_sessions_and_refuses_sign_in(self, session: Session) -> None:
        agent = make_user(session, make_institution(session), role="agent")
        token_holder = bearer(agent)
        service.deactivate_user(session, user_id=agent.id, actor="cli")
        assert not agent.active
        with pytest.raises(service.LoginFailed):
            service.authenticate(session, username=agent.username, password=PASSWORD, ip="t")
        with pytest.raises(service.rules.TokenRejected):
            service.user_for_token(session, token_holder["Authorization"].split()[1])
        service.activate_user(session, user_id=agent.id, actor="cli")
        assert service.authenticate(
            session, username=agent.username, password=PASSWORD, ip="t"
        ).active
        assert _actions(session, agent)[-2:] == ["user.deactivate", "user.activate"]

    def test_set_role_is_audited_with_both_roles(self, session: Session) -> None:
        agent = make_user(session, make_institution(session), role="agent")
        service.set_role(session, user_id=agent.id, role="team_lead", actor="cli")
        assert agent.role == "team_lead"
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.role_change")
        ).all()[-1]
        assert event.details["from"] == "agent"
        assert event.details["to"] == "team_lead"
        with pytest.raises(ValidationFailed, match="role must be one of"):
            service.set_role(session, user_id=agent.id, role="boss", actor="cli")

    def test_the_last_active_admin_cannot_be_removed(self, session: Session) -> None:
        institution = make_institution(session)
        only_admin = make_user(session, institution, role="admin")
        with pytest.raises(Conflict, match="last active admin"):
            service.deactivate_user(session, user_id=only_admin.id, actor="cli")
        with pytest.raises(Conflict, match="last active admin"):
            service.set_role(session, user_id=only_admin.id, role="manager", actor="cli")
        second = make_user(session, institution, role="admin")
        service.set_role(session, user_id=only_admin.id, role="manager", actor="cli")
        with pytest.raises(Conflict, match="last active admin"):
            service.deactivate_user(session, user_id=second.id, actor="cli")

    def test_an_admin_cannot_lock_themself_out(self, session: Session) -> None:
        institution = make_institution(session)
        admin = make_user(session, institution, role="admin")
        make_user(session, institution, role="admin")
        principal = principal_for_user(admin)
        with pytest.raises(Conflict, match="yourself"):
            service.deactivate_user(session, user_id=admin.id, actor=principal)
        with pytest.raises(Conflict, match="yourself"):
            service.set_role(session, user_id=admin.id, role="agent", actor=principal)

    def test_another_institutions_user_is_not_found(self, session: Session) -> None:
        admin = make_user(session, make_institution(session), role="admin")
        stranger = make_user(session, make_institution(session), role="agent")
        with pytest.raises(NotFound):
            service.deactivate_user(session, user_id=stranger.id, actor=principal_for_user(admin))
        assert stranger.active


class TestCli:
    def _users(self) -> None:
        with unit_of_work() as session:
            institution = make_institution(session, code="ADM-CLI")
            make_user(session, institution, role="admin", username="boss")
            make_user(session, institution, role="agent", username="wang.lei")

    def test_reset_password_deactivate_and_set_role(self, cli_db: str) -> None:
        self._users()
        reset = runner.invoke(
            cli,
            ["users", "reset-password", "wang.lei", "--password-stdin"],
            input=f"{NEW_PASSWORD}\n",
        )
        assert reset.exit_code == 0, reset.output
        assert "Reset the password of wang.lei" in reset.output
        role = runner.invoke(cli, ["users", "set-role", "wang.lei", "team_lead"])
        assert role.exit_code == 0, role.output
        assert "from agent to team_lead" in role.output
        off = runner.invoke(cli, ["users", "deactivate", "wang.lei"])
        assert off.exit_code == 0, off.output
        with unit_of_work() as session:
            user = session.scalars(select(User).where(User.username == "wang.lei")).one()
            assert (user.active, str(user.role)) == (False, "team_lead")
            assert _actions(session, user)[-3:] == [
                "user.password_reset",
                "user.role_change",
                "user.deactivate",
            ]
        listed = runner.invoke(cli, ["users", "list"])
        assert re.search(r"wang\.lei\s.*\bno\b", listed.output)

    def test_refusals_are_one_line_errors(self, cli_db: str) -> None:
        self._users()
        last_admin = runner.invoke(cli, ["users", "deactivate", "boss"])
        assert last_admin.exit_code == 1
        assert "last active admin" in last_admin.output
        unknown = runner.invoke(cli, ["users", "set-role", "nobody", "agent"])
        assert unknown.exit_code == 1
        assert "no user called 'nobody'" in unknown.output


def _sign_in(client: TestClient, user: User) -> str:
    response = Response()
    csrf = login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, match.group(1))
    return csrf


class TestWebPage:
    def test_an_admin_manages_users_from_the_page(self, session: Session) -> None:
        institution = make_institution(session)
        admin = make_user(session, institution, role="admin")
        agent = make_user(session, institution, role="agent")
        with client_for(session) as client:
            csrf = _sign_in(client, admin)
            listing = client.get("/admin/users", headers=ENGLISH)
            assert f'action="/admin/users/{agent.id}/deactivate"' in listing.text
            assert f'action="/admin/users/{admin.id}/deactivate"' not in listing.text
            role = client.post(
                f"/admin/users/{agent.id}/role",
                data={"role": "manager", CSRF_FIELD: csrf},
                headers=ENGLISH,
            )
            reset = client.post(
                f"/admin/users/{agent.id}/password",
                data={"password": NEW_PASSWORD, CSRF_FIELD: csrf},
                headers=ENGLISH,
            )
            off = client.post(
                f"/admin/users/{agent.id}/deactivate", data={CSRF_FIELD: csrf}, headers=ENGLISH
            )
            assert "was deactivated" in off.text
        assert role.status_code == reset.status_code == off.status_code == 200
        session.refresh(agent)
        assert (agent.active, str(agent.role)) == (False, "manager")
        assert _actions(session, agent)[-3:] == [
            "user.role_change",
            "user.password_reset",
            "user.deactivate",
        ]

    def test_refusals_come_back_as_a_message(self, session: Session) -> None:
        institution = make_institution(session)
        admin = make_user(session, institution, role="admin")
        with client_for(session) as client:
            csrf = _sign_in(client, admin)
            refused = client.post(
                f"/admin/users/{admin.id}/deactivate", data={CSRF_FIELD: csrf}, headers=ENGLISH
            )
            no_csrf = client.post(f"/admin/users/{admin.id}/role", data={"role": "agent"})
        assert "Refused: you cannot deactivate or demote yourself" in refused.text
        assert no_csrf.status_code == 403
        session.refresh(admin)
        assert admin.active
        assert str(admin.role) == "admin"

    def test_a_manager_cannot_manage_users(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        agent = make_user(session, institution, role="agent")
        with client_for(session) as client:
            csrf = _sign_in(client, manager)
            response = client.post(f"/admin/users/{agent.id}/deactivate", data={CSRF_FIELD: csrf})
        assert response.status_code == 403
        session.refresh(agent)
        assert agent.active
