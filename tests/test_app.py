"""The application as a whole: list pages past the end and the documented error answers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from recoup.app import PROBLEM, PROBLEM_STATUSES, create_app
from recoup.identity.dependencies import route_rules
from recoup.identity.permissions import ROLES, permissions_of_role
from recoup.kit.pagination import MAX_PAGE
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


def _document() -> dict[str, Any]:
    return create_app().openapi()


def _paginated_lists() -> list[str]:
    return [
        path
        for path, operations in _document()["paths"].items()
        if any(
            parameter["name"] == "page"
            for parameter in operations.get("get", {}).get("parameters", [])
        )
    ]


def test_there_are_paginated_lists_to_check() -> None:
    assert len(_paginated_lists()) >= 6


@pytest.mark.parametrize("page", ["200000000000000000", str(MAX_PAGE + 1), "0"])
def test_every_paginated_list_refuses_a_page_past_the_limit(session: Session, page: str) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    users = {role: make_user(session, institution, role=role) for role in ROLES}
    needed = {
        rule.path: set(rule.permissions)
        for rule in route_rules(create_app())
        if "GET" in rule.methods
    }
    with client_for(session) as client:
        for path in _paginated_lists():
            role = next(role for role in ROLES if needed[path] <= permissions_of_role(role))
            url = path.replace("{account_id}", str(account.id))
            answer = client.get(url, params={"page": page}, headers=bearer(users[role]))
            body = assert_problem(answer, 422)
            assert "page" in str(body["detail"]), path


def test_the_last_allowed_page_is_an_empty_page(session: Session) -> None:
    auditor = make_user(session, make_institution(session), role="auditor")
    with client_for(session) as client:
        answer = client.get(
            "/api/v1/audit", params={"page": MAX_PAGE, "size": 200}, headers=bearer(auditor)
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []


def test_every_api_operation_declares_its_problem_answers() -> None:
    document = _document()
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in methods.items()
    ]
    assert operations
    for path, method, operation in operations:
        for status in (401, 403, 404, 409, 413, 422, 429, 503):
            declared = operation["responses"].get(str(status))
            assert declared is not None, (method, path, status)
            assert declared["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, status)
    assert set(PROBLEM_STATUSES) == {401, 403, 404, 409, 413, 422, 429, 503}
    assert "HTTPValidationError" not in document["components"]["schemas"]


class TestNulCharacters:
    def test_nul_in_a_query_json_or_form_is_422_on_every_backend(self, session: Session) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        draft = {
            "name": "reminder",
            "channel": "sms",
            "locale": "zh-CN",
            "audience": "debtor",
            "body": "您好\u0000，请按时还款。",
        }
        with client_for(session) as client:
            listed = client.get(
                "/api/v1/templates", params={"status": "draft\x00"}, headers=bearer(officer)
            )
            assert "NUL" in str(assert_problem(listed, 422)["detail"])
            created = client.post("/api/v1/templates", json=draft, headers=bearer(officer))
            assert "NUL" in str(assert_problem(created, 422)["detail"])
            token = client.post(
                "/api/v1/auth/token", data={"username": "ad\x00min", "password": "x"}
            )
            assert "NUL" in str(assert_problem(token, 422)["detail"])
            # A backslash followed by "u0000" is ordinary text.
            plain = client.post(
                "/api/v1/templates",
                json={**draft, "body": "路径 C:\\u0000\\新建"},
                headers=bearer(officer),
            )
            assert plain.status_code == 201, plain.text
            assert plain.json()["body"] == "路径 C:\\u0000\\新建"
