from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.identity import service
from recoup.identity.principal import principal_for_user
from recoup.identity.rules import DEFAULT_LOCKOUT, TokenRejected
from recoup.identity.secret import secret_key
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.models import AuditEvent, User
from recoup.models.identity import LoginAttempt
from tests.factories import make_institution
from tests.identity.helpers import PASSWORD, make_user


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.sequence)))


class TestCreateUser:
    def test_stores_an_argon2id_hash_and_audits(self, session: Session) -> None:
        institution = make_institution(session)
        user = make_user(session, institution, role="manager", username="mgr.one")
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert "user.create" in _actions(session)

    def test_policy_and_role_errors_are_reported_together(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed) as error:
            service.create_user(
                session,
                username="bob",
                role="boss",
                institution_id=institution.id,
                password="bob",
                actor="t",
            )
        assert "role must be one of" in error.value.message
        assert "at least 12 characters" in error.value.message

    def test_duplicate_username(self, session: Session) -> None:
        institution = make_institution(session)
        make_user(session, institution, username="dup.user")
        with pytest.raises(Conflict):
            make_user(session, institution, username="dup.user")

    def test_only_admins_may_be_platform_users(self, session: Session) -> None:
        with pytest.raises(ValidationFailed, match="platform user"):
            make_user(session, None, role="agent")

    def test_an_admin_manages_only_its_institution(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        admin = principal_for_user(make_user(session, mine, role="admin"))
        with pytest.raises(NotFound, match=f"no institution {theirs.id}"):
            service.create_user(
                session,
                username="intruder",
                role="agent",
                institution_id=theirs.id,
                password=PASSWORD,
                actor=admin,
            )


class TestAuthenticate:
    def test_success_is_audited_and_clears_failures(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        with pytest.raises(service.LoginFailed):
            service.authenticate(
                session, username=user.username, password="wrong-password-1", ip="10.0.0.1"
            )
        assert (
            service.authenticate(session, username=user.username, password=PASSWORD, ip="10.0.0.1")
            is user
        )
        assert user.failed_logins == 0
        assert user.last_login_at is not None
        assert _actions(session)[-2:] == ["auth.login_failed", "auth.login"]

    def test_unknown_user_and_wrong_password_look_the_same(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        with pytest.raises(service.LoginFailed) as unknown:
            service.authenticate(session, username="nobody-here", password=PASSWORD, ip="10.0.0.2")
        with pytest.raises(service.LoginFailed) as wrong:
            service.authenticate(
                session, username=user.username, password="Wrong-password-9", ip="10.0.0.2"
            )
        assert unknown.value.message == wrong.value.message == "wrong username or password"

    def test_disabled_user_cannot_sign_in(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        user.active = False
        with pytest.raises(service.LoginFailed):
            service.authenticate(session, username=user.username, password=PASSWORD, ip="10.0.0.3")

    def test_lockout_after_repeated_failures_even_with_the_right_password(
        self, session: Session
    ) -> None:
        user = make_user(session, make_institution(session))
        for _ in range(DEFAULT_LOCKOUT.user_failures):
            with pytest.raises(service.LoginFailed):
                service.authenticate(
                    session, username=user.username, password="Wrong-password-9", ip="10.0.0.4"
                )
        assert user.locked_until is not None
        with pytest.raises(service.LoginLocked, match="too many failed sign-ins for this account"):
            service.authenticate(session, username=user.username, password=PASSWORD, ip="10.0.0.5")
        assert _actions(session)[-1] == "auth.login_locked"

    def test_lockout_per_address(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        now = utcnow()
        session.add_all(
            LoginAttempt(
                username=f"guess{n}",
                ip="10.9.9.9",
                succeeded=False,
                attempted_at=now - timedelta(seconds=n),
            )
            for n in range(DEFAULT_LOCKOUT.ip_failures)
        )
        session.flush()
        with pytest.raises(service.LoginLocked, match="this address"):
            service.authenticate(session, username=user.username, password=PASSWORD, ip="10.9.9.9")
        assert (
            service.authenticate(session, username=user.username, password=PASSWORD, ip="10.9.9.8")
            is user
        )


class TestAccessTokens:
    def test_round_trip(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        token, expires_at = service.issue_access_token(user)
        assert expires_at > utcnow()
        assert service.user_for_token(session, token) is user

    def test_ending_sessions_revokes_tokens(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        token, _ = service.issue_access_token(user)
        service.end_all_sessions(session, user=user, actor="test")
        with pytest.raises(TokenRejected, match="session was ended"):
            service.user_for_token(session, token)

    def test_a_token_signed_with_another_key_is_rejected(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        token, _ = service.issue_access_token(user)
        claims = jwt.decode(token, secret_key(), algorithms=["HS256"], audience="recoup-api")
        forged = jwt.encode(claims, "x" * 40, algorithm="HS256")
        with pytest.raises(TokenRejected):
            service.user_for_token(session, forged)

    def test_alg_none_is_rejected(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        token, _ = service.issue_access_token(user)
        claims = jwt.decode(token, secret_key(), algorithms=["HS256"], audience="recoup-api")
        unsigned = jwt.encode(claims, None, algorithm="none")
        with pytest.raises(TokenRejected):
            service.user_for_token(session, unsigned)


class TestApiKeys:
    def test_shown_once_stored_hashed(self, session: Session) -> None:
        institution = make_institution(session)
        plaintext, api_key = service.create_api_key(
            session,
            institution_id=institution.id,
            name="core banking",
            scopes=["payments:write"],
            actor="t",
        )
        assert plaintext.startswith(f"rk_{api_key.prefix}_")
        assert plaintext not in api_key.key_hash
        assert service.api_key_for(session, plaintext) is api_key

    def test_wrong_secret_and_revoked_keys_are_refused(self, session: Session) -> None:
        institution = make_institution(session)
        plaintext, api_key = service.create_api_key(
            session, institution_id=institution.id, name="crm", scopes=["contacts:write"], actor="t"
        )
        tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
        with pytest.raises(TokenRejected, match="not valid"):
            service.api_key_for(session, tampered)
        with pytest.raises(TokenRejected, match="malformed"):
            service.api_key_for(session, "rk_nothing")
        service.revoke_api_key(session, api_key_id=api_key.id, actor="t")
        with pytest.raises(TokenRejected, match="revoked"):
            service.api_key_for(session, plaintext)
        with pytest.raises(Conflict):
            service.revoke_api_key(session, api_key_id=api_key.id, actor="t")

    def test_scopes_are_checked(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="cannot be given to an API key"):
            service.create_api_key(
                session, institution_id=institution.id, name="x", scopes=["users:manage"], actor="t"
            )

    def test_another_institution_cannot_revoke(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        _, api_key = service.create_api_key(
            session, institution_id=theirs.id, name="theirs", scopes=["accounts:read"], actor="t"
        )
        admin = principal_for_user(make_user(session, mine, role="admin"))
        with pytest.raises(NotFound):
            service.revoke_api_key(session, api_key_id=api_key.id, actor=admin)


def test_password_change_bumps_the_session_version(session: Session) -> None:
    user = make_user(session, make_institution(session))
    before = user.session_version
    service.change_password(session, user=user, password="Another-good-pass-7", actor="test")
    assert user.session_version == before + 1
    assert session.get(User, user.id) is user


def test_an_address_is_rate_limited(session: Session) -> None:
    user = make_user(session, make_institution(session))
    now = utcnow()
    session.add_all(
        LoginAttempt(
            username=user.username,
            ip="10.7.7.7",
            succeeded=True,
            attempted_at=now - timedelta(seconds=n),
        )
        for n in range(DEFAULT_LOCKOUT.ip_attempts_per_minute)
    )
    session.flush()
    with pytest.raises(service.LoginLocked, match="wait a minute"):
        service.authenticate(session, username=user.username, password=PASSWORD, ip="10.7.7.7")
