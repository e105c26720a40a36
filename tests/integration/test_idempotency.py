"""Idempotency-Key on API writes: replays, refusals of reuse, scoping, concurrency, pruning."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup import idempotency
from recoup.app import create_app
from recoup.db import unit_of_work
from recoup.integration import service as integration
from recoup.kit.clock import utcnow, zone
from recoup.models.integration import IdempotencyRecord
from recoup.models.plans import PaymentPlan
from recoup.plans import service as plans_service
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


def _today() -> str:
    return utcnow().astimezone(zone("Asia/Shanghai")).date().isoformat()


def _plan_body(instalments: int = 4) -> dict[str, Any]:
    return {"instalments": instalments, "start_on": _today()}


def _plans(session: Session, account_id: int) -> int:
    query = (
        select(func.count()).select_from(PaymentPlan).where(PaymentPlan.account_id == account_id)
    )
    return session.scalar(query) or 0


class TestPureParts:
    def test_the_same_json_in_another_order_is_the_same_request(self) -> None:
        first = idempotency.fingerprint("POST", "/api/v1/x", "b=2&a=1", b'{"a": 1, "b": [1, 2]}')
        second = idempotency.fingerprint("post", "/api/v1/x", "a=1&b=2", b'{"b":[1,2],"a":1}')
        assert first == second
        assert first != idempotency.fingerprint("POST", "/api/v1/x", "a=1&b=2", b'{"a":2}')
        assert first != idempotency.fingerprint("POST", "/api/v1/y", "a=1&b=2", b'{"a":1}')

    @pytest.mark.parametrize("key", ["", "x" * 256, "clé", "a\tb"])
    def test_an_unusable_key_is_refused(self, key: str) -> None:
        with pytest.raises(Exception, match="Idempotency-Key"):
            idempotency.check_key(key)


class TestReplay:
    def test_the_same_key_and_body_replay_the_first_answer(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        url = f"/api/v1/accounts/{account.id}/plans"
        headers = {**bearer(manager), "Idempotency-Key": "plan-1"}
        with client_for(session) as client:
            first = client.post(url, json=_plan_body(), headers=headers)
            assert first.status_code == 201, first.text
            assert "Idempotent-Replayed" not in first.headers
            again = client.post(url, json=_plan_body(), headers=headers)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.json() == first.json()
        assert _plans(session, account.id) == 1

    def test_the_same_key_with_another_body_is_refused_naming_the_header(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        url = f"/api/v1/accounts/{account.id}/plans"
        headers = {**bearer(manager), "Idempotency-Key": "plan-2"}
        with client_for(session) as client:
            assert client.post(url, json=_plan_body(4), headers=headers).status_code == 201
            refused = assert_problem(client.post(url, json=_plan_body(6), headers=headers), 422)
        assert "Idempotency-Key" in str(refused["detail"])
        assert refused["errors"] == [
            {"field": "header.Idempotency-Key", "message": "already used for another request"}
        ]
        assert _plans(session, account.id) == 1

    def test_a_refused_request_keeps_no_key_so_a_retry_does_the_work(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        url = f"/api/v1/accounts/{account.id}/plans"
        headers = {**bearer(manager), "Idempotency-Key": "plan-3"}
        with client_for(session) as client:
            bad = {"instalments": 0, "start_on": _today()}
            assert_problem(client.post(url, json=bad, headers=headers), 422)
            assert client.post(url, json=_plan_body(), headers=headers).status_code == 201
        assert _plans(session, account.id) == 1

    def test_keys_belong_to_their_caller(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        accounts = [make_account(session, debtor), make_account(session, debtor)]
        managers = [make_user(session, institution, role="manager") for _ in accounts]
        with client_for(session) as client:
            for manager, account in zip(managers, accounts, strict=True):
                answer = client.post(
                    f"/api/v1/accounts/{account.id}/plans",
                    json=_plan_body(),
                    headers={**bearer(manager), "Idempotency-Key": "shared"},
                )
                assert answer.status_code == 201, answer.text
                assert "Idempotent-Replayed" not in answer.headers
        assert [_plans(session, account.id) for account in accounts] == [1, 1]

    def test_a_bad_key_is_a_problem_naming_the_header(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        with client_for(session) as client:
            body = assert_problem(
                client.post(
                    f"/api/v1/accounts/{account.id}/plans",
                    json=_plan_body(),
                    headers={**bearer(manager), "Idempotency-Key": "x" * 300},
                ),
                422,
            )
        assert "Idempotency-Key" in str(body["detail"])

    def test_reads_and_requests_without_a_key_are_untouched(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        account = make_account(session, make_debtor(session, institution))
        url = f"/api/v1/accounts/{account.id}/plans"
        with client_for(session) as client:
            assert client.post(url, json=_plan_body(), headers=bearer(manager)).status_code == 201
            # Without a key the second plan is a new request (refused: one plan at a time).
            assert_problem(client.post(url, json=_plan_body(), headers=bearer(manager)), 409)
            listed = client.get(url, headers={**bearer(manager), "Idempotency-Key": "read"})
        assert listed.status_code == 200
        assert _plans(session, account.id) == 1
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


class TestOpenApi:
    def test_every_api_write_declares_the_header(self) -> None:
        document = create_app().openapi()
        writes = [
            (path, method, operation)
            for path, operations in document["paths"].items()
            if path.startswith("/api/v1") and path != "/api/v1/auth/token"
            for method, operation in operations.items()
            if method in {"post", "put", "patch", "delete"}
        ]
        assert writes
        for path, method, operation in writes:
            names = [item["name"] for item in operation.get("parameters", [])]
            assert "Idempotency-Key" in names, (method, path)
        reads = document["paths"]["/api/v1/accounts"]["get"].get("parameters", [])
        assert "Idempotency-Key" not in [item["name"] for item in reads]


class TestPruning:
    def test_keys_older_than_the_setting_are_forgotten(self, session: Session) -> None:
        institution = make_institution(session)
        now = utcnow()
        for key, age in (("old", 8), ("fresh", 6)):
            session.add(
                IdempotencyRecord(
                    institution_id=institution.id,
                    caller="user:1",
                    key=key,
                    fingerprint="0" * 64,
                    method="POST",
                    path="/api/v1/x",
                    status_code=200,
                    response_headers={},
                    created_at=now - timedelta(days=age),
                )
            )
        session.flush()
        assert integration.prune_idempotency_keys(session, now=now) == 1
        left = session.scalars(
            select(IdempotencyRecord.key).where(IdempotencyRecord.institution_id == institution.id)
        ).all()
        assert left == ["fresh"]


class TestConcurrentDuplicates:
    def test_two_requests_with_one_key_at_once_do_the_work_once(
        self, live_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with unit_of_work() as session:
            institution = make_institution(session)
            manager = make_user(session, institution, role="manager")
            account = make_account(session, make_debtor(session, institution))
            headers = {**bearer(manager), "Idempotency-Key": "at-once"}
            account_id = account.id
        propose = plans_service.propose_plan

        def slow_propose(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.4)  # both requests are in flight together
            return propose(*args, **kwargs)

        monkeypatch.setattr(plans_service, "propose_plan", slow_propose)
        app = create_app()
        answers: list[Any] = []

        def post() -> None:
            with TestClient(app, raise_server_exceptions=False) as client:
                answers.append(
                    client.post(
                        f"/api/v1/accounts/{account_id}/plans",
                        json=_plan_body(),
                        headers=headers,
                    )
                )

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(answer.status_code for answer in answers) == [201, 201], [
            answer.text for answer in answers
        ]
        assert answers[0].json() == answers[1].json()
        assert sorted(answer.headers.get("Idempotent-Replayed", "") for answer in answers) == [
            "",
            "true",
        ]
        with unit_of_work(write=False) as session:
            assert _plans(session, account_id) == 1


def test_plans_start_today_in_the_fixture_zone() -> None:
    assert date.fromisoformat(_today())
