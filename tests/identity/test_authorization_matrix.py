"""Every route of the app, called by every role, a user of another institution, an API key,
a platform admin and an anonymous caller, must answer as the permission matrix says.

A route that declares no permission (``authorize(...)`` / ``require_page(...)`` somewhere in
its dependencies) and is not on ``permissions.PUBLIC_PATHS`` fails this test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.identity import service
from recoup.identity.dependencies import (
    CSRF_HEADER,
    SESSION_COOKIE,
    RouteRule,
    login_session,
    route_rules,
)
from recoup.identity.permissions import API_KEY_SCOPES, ROLES, is_public_path, permissions_of_role
from recoup.models import User
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import bearer, client_for, make_user

SECRET_MARK = "TENANT-A-ONLY"


@dataclass
class Caller:
    """One identity the matrix calls every route as."""

    label: str
    permissions: frozenset[str]
    headers: dict[str, str] = field(default_factory=dict)
    cookie: str | None = None
    page_headers: dict[str, str] = field(default_factory=dict)
    same_tenant: bool = True
    can_use_pages: bool = True


def _web_login(user: User) -> tuple[str, str]:
    response = Response()
    csrf = login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    return match.group(1), csrf


def _user_caller(label: str, user: User, *, same_tenant: bool) -> Caller:
    cookie, csrf = _web_login(user)
    return Caller(
        label=label,
        permissions=permissions_of_role(str(user.role)),
        headers=bearer(user),
        cookie=cookie,
        page_headers={CSRF_HEADER: csrf},
        same_tenant=same_tenant,
    )


def _url(rule: RouteRule, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        return str(ids.get(match.group(1), 1))

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", fill, rule.path)


def _call(
    client: TestClient, method: str, url: str, caller: Caller | None, *, page: bool
) -> object:
    client.cookies.clear()
    headers: dict[str, str] = {}
    if caller is not None:
        if page:
            if caller.cookie:
                client.cookies.set(SESSION_COOKIE, caller.cookie)
            headers.update(caller.page_headers)
        else:
            headers.update(caller.headers)
    kwargs: dict[str, object] = {"headers": headers, "follow_redirects": False}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return client.request(method, url, **kwargs)  # type: ignore[arg-type]


def test_every_route_answers_as_the_matrix_says(session: Session) -> None:
    tenant = make_institution(session)
    other_tenant = make_institution(session)
    agent = make_user(session, tenant, role="agent")
    debtor = make_debtor(session, tenant, external_id=f"{SECRET_MARK}-D")
    make_contact_point(session, debtor)
    account = make_account(session, debtor, external_id=f"{SECRET_MARK}-A")
    account.assigned_agent_id = agent.id
    _, target_key = service.create_api_key(
        session,
        institution_id=tenant.id,
        name=f"{SECRET_MARK}-key",
        scopes=["accounts:read"],
        actor="test",
    )
    caller_key_text, _ = service.create_api_key(
        session,
        institution_id=tenant.id,
        name="caller",
        scopes=sorted(API_KEY_SCOPES),
        actor="test",
    )
    session.flush()

    callers: list[Caller] = []
    for role in ROLES:
        user = agent if role == "agent" else make_user(session, tenant, role=role)
        callers.append(_user_caller(role, user, same_tenant=True))
        callers.append(
            _user_caller(
                f"other-tenant {role}",
                make_user(session, other_tenant, role=role),
                same_tenant=False,
            )
        )
    platform_admin = make_user(session, None, role="admin")
    # A platform admin manages every tenant's users, keys and trail; scoping tests show it
    # reads no tenant's portfolio.
    callers.append(_user_caller("platform admin", platform_admin, same_tenant=True))
    callers.append(
        Caller(
            label="api key",
            permissions=frozenset(API_KEY_SCOPES),
            headers={"Authorization": f"Bearer {caller_key_text}"},
            can_use_pages=False,
        )
    )
    ids = {
        "debtor_id": debtor.id,
        "account_id": account.id,
        "api_key_id": target_key.id,
        "user_id": agent.id,
        "id": debtor.id,
    }

    failures: list[str] = []
    with client_for(session) as client:
        rules = route_rules(client.app)  # type: ignore[arg-type]
        assert len(rules) > 10
        for rule in rules:
            if is_public_path(rule.path):
                continue
            if not rule.permissions:
                failures.append(
                    f"{sorted(rule.methods)} {rule.path}: declares no permission and is not public"
                )
                continue
            page = rule.kind == "page"
            url = _url(rule, ids)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                where = f"{method} {rule.path}"
                anonymous = _call(client, method, url, None, page=page)
                redirected = anonymous.status_code == 303 and anonymous.headers.get(  # type: ignore[attr-defined]
                    "location", ""
                ).startswith("/login")
                if page and method == "GET":
                    if not redirected:
                        failures.append(
                            f"{where} anonymous: {anonymous.status_code}, expected 303 to /login"
                        )  # type: ignore[attr-defined]
                elif page:
                    # A form post without a session may be refused by its CSRF check first.
                    if not redirected and anonymous.status_code not in {401, 403}:  # type: ignore[attr-defined]
                        failures.append(
                            f"{where} anonymous: {anonymous.status_code}, expected refusal"
                        )  # type: ignore[attr-defined]
                elif anonymous.status_code != 401 or "www-authenticate" not in anonymous.headers:  # type: ignore[attr-defined]
                    failures.append(f"{where} anonymous: {anonymous.status_code}, expected 401")  # type: ignore[attr-defined]
                for caller in callers:
                    if page and not caller.can_use_pages:
                        continue
                    response = _call(client, method, url, caller, page=page)
                    status = response.status_code  # type: ignore[attr-defined]
                    allowed = all(
                        permission in caller.permissions for permission in rule.permissions
                    )
                    if status >= 500:
                        failures.append(f"{where} as {caller.label}: server error {status}")
                    elif not allowed and status != 403:
                        failures.append(f"{where} as {caller.label}: {status}, expected 403")
                    elif allowed and status in {401, 403}:
                        failures.append(
                            f"{where} as {caller.label}: {status}, expected to be allowed"
                        )
                    elif allowed and not caller.same_tenant:
                        has_id = "{" in rule.path
                        if has_id and 200 <= status < 300:
                            failures.append(
                                f"{where} as {caller.label}: {status} for another tenant's record"
                            )
                        if SECRET_MARK in response.text:  # type: ignore[attr-defined]
                            failures.append(
                                f"{where} as {caller.label}: shows another tenant's data"
                            )
    assert not failures, "\n".join(failures)


def test_a_route_without_a_permission_is_caught() -> None:
    app = create_app()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    rule = next(rule for rule in route_rules(app) if rule.path == "/api/v1/forgotten")
    assert rule.permissions == ()
    assert not is_public_path(rule.path)
