import re
import secrets
from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest
from fastapi import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup import config
from recoup.identity.dependencies import CSRF_HEADER, SESSION_COOKIE, login_session
from recoup.identity.rules import DEFAULT_LOCKOUT, access_claims
from recoup.identity.secret import secret_key
from recoup.kit.clock import utcnow
from recoup.models.identity import LoginAttempt
from tests.factories import give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import PASSWORD, assert_problem, bearer, client_for, make_user


class TestToken:
    def test_password_form_gives_a_bearer_token(self, session: Session) -> None:
        user = make_user(session, make_institution(session), role="auditor")
        with client_for(session) as client:
            response = client.post(
                "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
            )
            assert response.status_code == 200
            body = response.json()
            assert body["token_type"] == "bearer"
            assert body["expires_in"] == 3600
            me = client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
            )
            assert me.json()["username"] == user.username
            assert "audit:read" in me.json()["permissions"]

    def test_wrong_password_is_401_problem_and_the_attempt_is_kept(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        with client_for(session) as client:
            response = client.post(
                "/api/v1/auth/token", data={"username": user.username, "password": "nope-nope-123"}
            )
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        kept = session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.username == user.username)
        )
        assert kept == 1

    def test_lockout_after_repeated_failures(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        with client_for(session) as client:
            for _ in range(DEFAULT_LOCKOUT.user_failures):
                wrong = client.post(
                    "/api/v1/auth/token",
                    data={"username": user.username, "password": "Wrong-pass-123"},
                )
                assert_problem(wrong, 401)
            locked = client.post(
                "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
            )
        body = assert_problem(locked, 429)
        assert "too many failed sign-ins" in str(body["detail"])
        lock_seconds = int(DEFAULT_LOCKOUT.lock_for.total_seconds())
        assert lock_seconds - 60 < int(locked.headers["retry-after"]) <= lock_seconds

    def test_the_sign_in_page_says_when_to_retry(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        with client_for(session) as client:
            form = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            for _ in range(DEFAULT_LOCKOUT.user_failures + 1):
                answer = client.post(
                    "/login",
                    data={
                        "username": user.username,
                        "password": "Wrong-pass-123",
                        "csrf_token": csrf.group(1),
                    },
                )
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) > 60

    def test_missing_form_fields_are_422(self, session: Session) -> None:
        with client_for(session) as client:
            assert_problem(client.post("/api/v1/auth/token", data={"username": "x"}), 422)


class TestBadCredentials:
    @pytest.mark.parametrize(
        "header",
        [
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearer not-a-jwt",
            "Bearer a.b.c",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
            "Bearer rk_",
            "Bearer rk_12345678_" + "x" * 43,
            "Bearer ' OR 1=1 --",
            "Token abc",
        ],
    )
    def test_malformed_credentials_are_401_problem(self, session: Session, header: str) -> None:
        with client_for(session) as client:
            response = client.get("/api/v1/me", headers={"Authorization": header})
        assert_problem(response, 401)
        assert "www-authenticate" in response.headers

    def test_bad_api_key_header(self, session: Session) -> None:
        with client_for(session) as client:
            assert_problem(client.get("/api/v1/accounts", headers={"X-API-Key": "rk_zz"}), 401)

    def test_expired_token(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        claims = access_claims(
            user_id=user.id,
            session_version=user.session_version,
            issued_at=utcnow() - timedelta(hours=2),
            lifetime=timedelta(minutes=5),
        )
        token = jwt.encode(claims, secret_key(), algorithm="HS256")
        with client_for(session) as client:
            response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        body = assert_problem(response, 401)
        assert "expired" in str(body["detail"])
        assert 'error="invalid_token"' in response.headers["www-authenticate"]

    def test_token_of_a_disabled_user(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        headers = bearer(user)
        user.active = False
        with client_for(session) as client:
            assert_problem(client.get("/api/v1/me", headers=headers), 401)


class TestApiKeysOverHttp:
    def test_create_use_revoke(self, session: Session) -> None:
        institution = make_institution(session)
        admin = make_user(session, institution, role="admin")
        with client_for(session) as client:
            created = client.post(
                "/api/v1/apikeys",
                json={"name": "core", "scopes": ["accounts:read"]},
                headers=bearer(admin),
            )
            assert created.status_code == 201, created.text
            key = created.json()["key"]
            assert client.get("/api/v1/accounts", headers={"X-API-Key": key}).status_code == 200
            assert (
                client.get(
                    "/api/v1/accounts", headers={"Authorization": f"Bearer {key}"}
                ).status_code
                == 200
            )
            assert_problem(client.get("/api/v1/debtors", headers={"X-API-Key": key}), 403)
            listed = client.get("/api/v1/apikeys", headers=bearer(admin)).json()
            assert key not in str(listed)
            revoked = client.delete(
                f"/api/v1/apikeys/{created.json()['id']}", headers=bearer(admin)
            )
            assert revoked.status_code == 204
            assert_problem(client.get("/api/v1/accounts", headers={"X-API-Key": key}), 401)

    def test_unknown_scope_is_422(self, session: Session) -> None:
        admin = make_user(session, make_institution(session), role="admin")
        with client_for(session) as client:
            response = client.post(
                "/api/v1/apikeys", json={"name": "x", "scopes": ["root"]}, headers=bearer(admin)
            )
        assert_problem(response, 422)


class TestUsersOverHttp:
    def test_admin_creates_users_in_its_own_institution_only(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        admin = make_user(session, mine, role="admin")
        make_user(session, theirs, role="agent", username="their.agent")
        with client_for(session) as client:
            created = client.post(
                "/api/v1/users",
                json={"username": "new.agent", "role": "agent", "password": PASSWORD},
                headers=bearer(admin),
            )
            assert created.status_code == 201, created.text
            assert created.json()["institution_id"] == mine.id
            listed = client.get("/api/v1/users", headers=bearer(admin)).json()
        names = {user["username"] for user in listed["items"]}
        assert "new.agent" in names
        assert "their.agent" not in names

    def test_naming_another_or_an_unknown_institution_is_404(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        admin = make_user(session, mine, role="admin")
        platform = make_user(session, None, role="admin")
        user = {"username": "new.agent", "role": "agent", "password": PASSWORD}
        key = {"name": "core banking", "scopes": ["accounts:read"]}
        with client_for(session) as client:
            answers = [
                client.post(path, json={**body, "institution_id": institution_id}, headers=who)
                for path, body in (("/api/v1/users", user), ("/api/v1/apikeys", key))
                for who, institution_id in (
                    (bearer(admin), theirs.id),
                    (bearer(platform), 2**62),
                )
            ]
            listed = client.get("/api/v1/users", headers=bearer(admin)).json()
        for answer in answers:
            assert "no institution" in str(assert_problem(answer, 404)["detail"])
        assert "new.agent" not in {user["username"] for user in listed["items"]}

    def test_weak_password_is_422_with_the_reasons(self, session: Session) -> None:
        admin = make_user(session, make_institution(session), role="admin")
        with client_for(session) as client:
            response = client.post(
                "/api/v1/users",
                json={"username": "weak.one", "role": "agent", "password": "weak.one"},
                headers=bearer(admin),
            )
        body = assert_problem(response, 422)
        assert "at least 12 characters" in str(body["detail"])


def _cookie(user: object) -> tuple[str, str]:
    response = Response()
    csrf = login_session(response, user)  # type: ignore[arg-type]
    value = response.headers["set-cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0]
    return value, csrf


class TestCookieSession:
    def test_cookie_flags(self) -> None:
        response = Response()
        login_session(response, type("U", (), {"id": 1, "session_version": 1})())  # type: ignore[arg-type]
        header = response.headers["set-cookie"].lower()
        assert "httponly" in header
        assert "samesite=lax" in header
        assert "secure" not in header  # development

    def test_secure_outside_development(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECOUP_ENV", "production")
        monkeypatch.setenv("RECOUP_SECRET_KEY", secrets.token_urlsafe(48))
        config.get_settings.cache_clear()
        try:
            response = Response()
            login_session(response, type("U", (), {"id": 1, "session_version": 1})())  # type: ignore[arg-type]
            assert "secure" in response.headers["set-cookie"].lower()
        finally:
            monkeypatch.delenv("RECOUP_ENV")
            monkeypatch.delenv("RECOUP_SECRET_KEY")
            config.get_settings.cache_clear()

    def test_unsafe_requests_with_the_cookie_need_the_csrf_token(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        account = make_account(session, debtor)
        give_to_agent(session, account, agent.id)
        cookie, csrf = _cookie(agent)
        with client_for(session) as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            assert client.get("/api/v1/me").status_code == 200
            url = f"/api/v1/debtors/{debtor.id}/reveal"
            missing = client.post(url, json={"reason": "debtor called back"})
            body = assert_problem(missing, 403)
            assert "CSRF" in str(body["detail"])
            assert_problem(
                client.post(
                    url, json={"reason": "debtor called back"}, headers={CSRF_HEADER: "wrong"}
                ),
                403,
            )
            ok = client.post(
                url, json={"reason": "debtor called back"}, headers={CSRF_HEADER: csrf}
            )
            assert ok.status_code == 200, ok.text

    def test_a_tampered_cookie_is_anonymous(self, session: Session) -> None:
        user = make_user(session, make_institution(session))
        cookie, _ = _cookie(user)
        with client_for(session) as client:
            client.cookies.set(SESSION_COOKIE, cookie[:-2] + "xx")
            assert_problem(client.get("/api/v1/me"), 401)


class TestBodiesAndInjection:
    def test_oversized_body_is_413_problem(self, session: Session) -> None:
        admin = make_user(session, make_institution(session), role="admin")
        limit = config.get_settings().max_body_bytes
        with client_for(session) as client:
            response = client.post(
                "/api/v1/users",
                content=b"{" + b" " * limit + b"}",
                headers={**bearer(admin), "content-type": "application/json"},
            )
        assert_problem(response, 413)

    def test_oversized_streamed_body_is_413_problem(self, session: Session) -> None:
        admin = make_user(session, make_institution(session), role="admin")
        limit = config.get_settings().max_body_bytes

        def chunks() -> Iterator[bytes]:
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        with client_for(session) as client:
            response = client.post(
                "/api/v1/users",
                content=chunks(),
                headers={**bearer(admin), "content-type": "application/json"},
            )
        assert_problem(response, 413)

    @pytest.mark.parametrize(
        "value",
        [
            "' OR '1'='1",
            "1; DROP TABLE debtors; --",
            '" OR 1=1 --',
            "%' UNION SELECT password_hash FROM users --",
            "\\x00\\u0000",
        ],
    )
    def test_sql_injection_in_search_fields_finds_nothing(
        self, session: Session, value: str
    ) -> None:
        institution = make_institution(session)
        make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            for field in ("phone", "national_id"):
                response = client.get(
                    "/api/v1/debtors", params={field: value}, headers=bearer(manager)
                )
                assert response.status_code == 200, response.text
                assert response.json()["total"] == 0
            audit = client.get(
                "/api/v1/audit",
                params={"action": value, "actor": value},
                headers=bearer(make_user(session, institution, role="auditor")),
            )
            assert audit.status_code == 200
            assert_problem(
                client.get("/api/v1/debtors", params={"page": value}, headers=bearer(manager)), 422
            )
            if "/" not in value:
                assert_problem(client.get(f"/api/v1/debtors/{value}", headers=bearer(manager)), 422)

    @pytest.mark.parametrize(
        "path", ["/api/v1/debtors/0", "/api/v1/debtors/99999999999999999999", "/api/v1/accounts/-1"]
    )
    def test_out_of_range_ids_are_422(self, session: Session, path: str) -> None:
        manager = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            assert_problem(client.get(path, headers=bearer(manager)), 422)

    def test_page_size_over_the_limit_is_422(self, session: Session) -> None:
        manager = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            assert_problem(client.get("/api/v1/accounts?size=201", headers=bearer(manager)), 422)


class TestAnonymousCsrf:
    def test_a_form_token_is_bound_to_the_browser(self, session: Session) -> None:
        from fastapi import Depends, Request
        from fastapi.testclient import TestClient

        from recoup.app import create_app
        from recoup.identity.dependencies import CSRF_FIELD, csrf_protect, csrf_token

        app = create_app()

        @app.get("/probe")
        def form(request: Request) -> dict[str, str]:
            return {"token": csrf_token(request)}

        @app.post("/probe", dependencies=[Depends(csrf_protect)])
        def submit() -> dict[str, str]:
            return {"ok": "yes"}

        with TestClient(app) as client:
            issued = client.get("/probe")
            assert "recoup_csrf=" in issued.headers["set-cookie"]
            assert "httponly" in issued.headers["set-cookie"].lower()
            token = issued.json()["token"]
            assert client.get("/probe").json()["token"] == token  # same browser, same token
            assert_problem(client.post("/probe", data={}), 403)
            assert_problem(client.post("/probe", data={CSRF_FIELD: "forged"}), 403)
            assert client.post("/probe", data={CSRF_FIELD: token}).status_code == 200
            assert client.post("/probe", headers={"X-CSRF-Token": token}).status_code == 200
            client.cookies.clear()
            assert_problem(client.post("/probe", data={CSRF_FIELD: token}), 403)
