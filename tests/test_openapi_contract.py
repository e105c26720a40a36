"""Every API route, fed generated input by schemathesis: never a 5xx, always what the schema says.

Each backend gets its own seeded database (a SQLite file; a PostgreSQL schema when reachable),
committed for real, so generated requests meet real rows. Each operation is called with the
bearer token of a user whose role holds the permission the route declares. Every answer must
be below 500, with a status code, content type and body the OpenAPI document declares.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import Request
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.db import get_session, make_engine, refused
from recoup.identity.dependencies import route_rules
from recoup.identity.permissions import ROLES, permissions_of_role
from recoup.kit.clock import utcnow
from recoup.models import Base
from tests.conftest import POSTGRES_URL, _postgres_engine
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import bearer, make_user
from tests.workbench.helpers import add_payment, add_promise

pytestmark = pytest.mark.slow

# Bounded so both backends together stay near two minutes; raise it for a deeper local run.
EXAMPLES_PER_OPERATION = int(os.environ.get("RECOUP_CONTRACT_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _seed(engine: Engine) -> dict[str, dict[str, str]]:
    """Write a small portfolio and one user per role; return each role's bearer headers."""
    with Session(engine, expire_on_commit=False) as session:
        institution = make_institution(session)
        today = utcnow().date()
        for _ in range(3):
            debtor = make_debtor(session, institution)
            make_contact_point(session, debtor)
            account = make_account(session, debtor)
            add_promise(
                session,
                account,
                amount=10_000,
                promised_on=today - timedelta(days=10),
                due_date=today + timedelta(days=5),
            )
            add_payment(session, account, amount=1_000, paid_at=utcnow() - timedelta(days=2))
        users = {role: make_user(session, institution, role=role) for role in ROLES}
        session.commit()
        return {role: bearer(user) for role, user in users.items()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, dict[str, dict[str, str]]]]:
    """A database of its own per backend (committed data must not leak into other tests)."""
    schema = f"recoup_contract_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'contract.db'}")
    else:
        found = _postgres_engine(schema)
        if found is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (required in CI)")
        engine = found
    Base.metadata.create_all(engine)
    try:
        yield engine, _seed(engine)
    finally:
        engine.dispose()
        if request.param == "postgresql":
            cleanup = make_engine(POSTGRES_URL)
            with cleanup.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            cleanup.dispose()


@pytest.fixture(scope="module")
def contract(seeded: tuple[Engine, dict[str, dict[str, str]]]) -> Any:
    """The app's own OpenAPI document, loaded by schemathesis against the app in-process."""
    engine, _tokens = seeded
    app = create_app()

    def _session(request: Request) -> Iterator[Session]:
        # Like the real unit of work: commit on success, roll back on an error or a refusal.
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                if refused(request):
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                raise

    app.dependency_overrides[get_session] = _session
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def headers_for(
    seeded: tuple[Engine, dict[str, dict[str, str]]],
) -> dict[tuple[str, str], dict[str, str]]:
    """The bearer headers of a role holding each route's permissions, by (method, path)."""
    _engine, tokens = seeded
    chosen: dict[tuple[str, str], dict[str, str]] = {}
    for rule in route_rules(create_app()):
        needed = set(rule.permissions)
        role = next((role for role in ROLES if needed <= permissions_of_role(role)), "admin")
        for method in rule.methods:
            chosen[(method.upper(), rule.path)] = tokens[role]
    return chosen


def _operations() -> list[Any]:
    spec = create_app().openapi()
    return [
        pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
        for path, operations in spec["paths"].items()
        for method in operations
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_server_error_and_no_schema_violation(
    method: str,
    path: str,
    contract: Any,
    headers_for: dict[tuple[str, str], dict[str, str]],
) -> None:
    operation = contract[path][method]
    headers = headers_for.get((method, path), {})

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure here is never a fluke
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case: Any) -> None:
        # Generated credentials would only ever meet the 401 path: sign in as a real user.
        generated = {
            key: value
            for key, value in (case.headers or {}).items()
            if key.lower() not in {"authorization", "x-api-key"}
        }
        case.headers = {**generated, **headers}
        case.call_and_validate(checks=CHECKS)

    call()
