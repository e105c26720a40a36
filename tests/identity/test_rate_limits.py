"""Rate limits on the API: per API key (institution override), per signed-in user, per IP when
anonymous, shared through Redis between processes, and scopes enforced on every write route."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.orm import Session

from recoup import config
from recoup.app import create_app
from recoup.config import Settings
from recoup.identity import service as identity
from recoup.identity.dependencies import route_rules
from recoup.identity.permissions import API_KEY_SCOPES
from recoup.identity.ratelimit import KEY_PREFIX, RateLimiter, storage_url
from recoup.institutions import service as institutions
from recoup.models import Institution
from tests.conftest import REDIS_URL
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user, signed_in

READ = "/api/v1/accounts"


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Small limits for this test: 3 a minute per API key, 4 per user, 2 per anonymous IP."""
    monkeypatch.setenv("RECOUP_API_KEY_REQUESTS_PER_MINUTE", "3")
    monkeypatch.setenv("RECOUP_USER_REQUESTS_PER_MINUTE", "4")
    monkeypatch.setenv("RECOUP_ANONYMOUS_REQUESTS_PER_MINUTE", "2")
    monkeypatch.setenv("RECOUP_RATE_LIMIT_URL", "memory")
    config.get_settings.cache_clear()
    yield monkeypatch
    for name in (
        "RECOUP_API_KEY_REQUESTS_PER_MINUTE",
        "RECOUP_USER_REQUESTS_PER_MINUTE",
        "RECOUP_ANONYMOUS_REQUESTS_PER_MINUTE",
        "RECOUP_RATE_LIMIT_URL",
    ):
        monkeypatch.delenv(name)
    config.get_settings.cache_clear()


def _key(session: Session, institution: Institution, *scopes: str) -> dict[str, str]:
    text, _key = identity.create_api_key(
        session,
        institution_id=institution.id,
        name="core banking",
        scopes=list(scopes or ["accounts:read"]),
        actor="test",
    )
    return {"X-API-Key": text}


class TestStore:
    def test_memory_unless_a_redis_is_named(self) -> None:
        assert storage_url(Settings(jobs_url="", rate_limit_url="")) == "memory"
        assert storage_url(Settings(jobs_url="sqlite:///x.db")) == "memory"
        assert storage_url(Settings(jobs_url="redis://h:6379/1")) == "redis://h:6379/1"
        assert storage_url(Settings(jobs_url="redis://h/1", rate_limit_url="memory")) == "memory"
        assert storage_url(Settings(rate_limit_url="redis://r/2")) == "redis://r/2"

    def test_a_moving_window_per_identity(self) -> None:
        limiter = RateLimiter()
        verdicts = [limiter.hit("key:a", 2) for _ in range(3)]
        assert [v.allowed for v in verdicts] == [True, True, False]
        assert [v.remaining for v in verdicts] == [1, 0, 0]
        assert all(1 <= v.reset_seconds <= 60 for v in verdicts)
        assert limiter.hit("key:b", 2).allowed

    def test_an_unreachable_store_limits_nothing(self) -> None:
        limiter = RateLimiter("redis://127.0.0.1:1/0")
        assert all(limiter.hit("key:a", 1).allowed for _ in range(3))


class TestPerApiKey:
    def test_past_the_limit_429_with_headers(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        headers = _key(session, institution)
        with client_for(session) as client:
            answers = [client.get(READ, headers=headers) for _ in range(3)]
            refused = client.get(READ, headers=headers)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["RateLimit-Limit"] == "3"
        assert answers[0].headers["RateLimit-Policy"] == "3;w=60"
        assert 1 <= int(answers[0].headers["RateLimit-Reset"]) <= 60
        body = assert_problem(refused, 429)
        assert "3 requests a minute" in str(body["detail"])
        assert "API key" in str(body["detail"])
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Remaining"] == "0"

    def test_each_key_its_own_count(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        first, second = _key(session, institution), _key(session, institution)
        with client_for(session) as client:
            for _ in range(3):
                assert client.get(READ, headers=first).status_code == 200
            assert client.get(READ, headers=first).status_code == 429
            assert client.get(READ, headers=second).status_code == 200

    def test_a_refused_write_does_nothing(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        headers = _key(session, institution, "accounts:read", "risk_scores:write")
        with client_for(session) as client:
            for _ in range(3):
                client.get(READ, headers=headers)
            refused = client.post(
                "/api/v1/risk-scores",
                json={"scores": []},
                headers={**headers, "Idempotency-Key": "k-1"},
            )
        assert_problem(refused, 429)

    def test_the_institution_sets_its_own(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        institutions.update_settings(
            session,
            institution=institution,
            changes={"integration": {"api_requests_per_minute": 5}},
            actor="test",
        )
        headers = _key(session, institution)
        with client_for(session) as client:
            codes = [client.get(READ, headers=headers).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]

    def test_pages_are_not_counted(self, session: Session, limits: object) -> None:
        with client_for(session) as client:
            answers = [client.get("/healthz") for _ in range(5)]
        assert {a.status_code for a in answers} == {200}


class TestPerUser:
    def test_past_the_limit_429_with_headers(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        headers = bearer(make_user(session, institution, role="manager"))
        with client_for(session) as client:
            answers = [client.get(READ, headers=headers) for _ in range(4)]
            refused = client.get(READ, headers=headers)
        assert [a.status_code for a in answers] == [200] * 4
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["3", "2", "1", "0"]
        assert answers[0].headers["RateLimit-Policy"] == "4;w=60"
        body = assert_problem(refused, 429)
        assert "this user may send 4 requests a minute" in str(body["detail"])
        assert 1 <= int(refused.headers["Retry-After"]) <= 60

    def test_sessions_and_tokens_of_one_user_share_a_count(
        self, session: Session, limits: object
    ) -> None:
        institution = make_institution(session)
        user = make_user(session, institution, role="manager")
        with client_for(session) as client:
            codes = [client.get(READ, headers=bearer(user)).status_code for _ in range(2)]
            signed_in(client, user)
            codes += [client.get(READ).status_code for _ in range(3)]
        assert codes == [200] * 4 + [429]

    def test_each_user_its_own_count_apart_from_the_ip(
        self, session: Session, limits: object
    ) -> None:
        institution = make_institution(session)
        first, second = (make_user(session, institution, role="manager") for _ in range(2))
        with client_for(session) as client:
            first_codes = [client.get(READ, headers=bearer(first)).status_code for _ in range(5)]
            second_codes = [client.get(READ, headers=bearer(second)).status_code for _ in range(4)]
        # Both from one address: the anonymous limit (2) is not theirs.
        assert first_codes == [200] * 4 + [429]
        assert second_codes == [200] * 4


class TestAnonymous:
    def test_per_ip(self, session: Session, limits: object) -> None:
        with client_for(session) as client:
            codes = [client.get(READ).status_code for _ in range(3)]
        assert codes == [401, 401, 429]

    def test_a_wrong_key_counts_against_the_ip(self, session: Session, limits: object) -> None:
        institution = make_institution(session)
        good = _key(session, institution)
        with client_for(session) as client:
            bad = [client.get(READ, headers={"X-API-Key": "rk_nope_x"}) for _ in range(3)]
            allowed = client.get(READ, headers=good)
        assert [a.status_code for a in bad] == [401, 401, 429]
        assert bad[-1].headers["RateLimit-Limit"] == "2"
        assert allowed.status_code == 200

    def test_public_api_paths_by_ip(self, session: Session, limits: object) -> None:
        with client_for(session) as client:
            codes = [
                client.post("/api/v1/auth/token", data={"username": "x", "password": "y"})
                for _ in range(3)
            ]
        assert [c.status_code for c in codes][-1] == 429


class TestShared:
    def test_two_processes_share_the_count_through_redis(
        self, session: Session, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
    ) -> None:
        store = redis_client
        monkeypatch.setenv("RECOUP_API_KEY_REQUESTS_PER_MINUTE", "4")
        monkeypatch.setenv("RECOUP_RATE_LIMIT_URL", REDIS_URL)
        config.get_settings.cache_clear()
        institution = make_institution(session)
        headers = _key(session, institution)
        try:
            # Two apps: two processes' worth of in-memory state, one Redis between them.
            with client_for(session) as one, client_for(session) as two:
                codes = [
                    (one if n % 2 else two).get(READ, headers=headers).status_code for n in range(5)
                ]
            assert codes == [200, 200, 200, 200, 429]
            assert any(key.startswith(KEY_PREFIX.encode()) for key in store.keys(f"{KEY_PREFIX}*"))
        finally:
            for key in store.scan_iter(f"{KEY_PREFIX}*"):
                store.delete(key)
            monkeypatch.delenv("RECOUP_API_KEY_REQUESTS_PER_MINUTE")
            monkeypatch.delenv("RECOUP_RATE_LIMIT_URL")
            config.get_settings.cache_clear()


def _path_with_ids(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_a_key_without_the_scope_is_refused_on_every_write(session: Session) -> None:
    """Walk the OpenAPI document: each /api/v1 write a key may not make answers 403."""
    app = create_app()
    declared = {
        (method.upper(), rule.path): rule.permissions
        for rule in route_rules(app)
        for method in rule.methods
    }
    institution = make_institution(session)
    checked = 0
    with client_for(session) as client:
        for path, operations in app.openapi()["paths"].items():
            if not path.startswith("/api/v1/"):
                continue
            for method in operations:
                method = method.upper()
                if method not in {"POST", "PUT", "PATCH", "DELETE"}:
                    continue
                needed = declared[(method, path)]
                if not needed:  # public: the token endpoint and providers' signed receipts
                    continue
                others = sorted(API_KEY_SCOPES - set(needed)) or ["debtors:read"]
                headers = {
                    **_key(session, institution, *others),
                    "Idempotency-Key": uuid.uuid4().hex,
                }
                answer = client.request(method, _path_with_ids(path), json={}, headers=headers)
                assert answer.status_code == 403, (method, path, answer.text)
                assert (
                    " ".join(needed) in answer.json()["detail"]
                    or needed[0] in answer.json()["detail"]
                )
                checked += 1
    assert checked >= 40
