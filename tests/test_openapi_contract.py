"""Every API route, fed generated input by schemathesis: never a 5xx, always what the schema says.

Each backend gets its own seeded database (a SQLite file; a PostgreSQL schema when reachable),
committed for real, so generated requests meet real rows. Each operation is called with the
bearer token of a user whose role holds the permission the route declares. Every answer must
be below 500, with a status code, content type and body the OpenAPI document declares.
(``tests/integration/test_api_key_fuzz.py`` does the same as an integration's API key.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.identity.dependencies import route_rules
from recoup.identity.permissions import ROLES, permissions_of_role
from tests import contract
from tests.identity.helpers import bearer, make_user

pytestmark = pytest.mark.slow

# Bounded so both backends together stay near two minutes; raise it for a deeper local run.
EXAMPLES_PER_OPERATION = int(os.environ.get("RECOUP_CONTRACT_EXAMPLES", "15"))


def _seed(engine: Engine) -> dict[str, dict[str, str]]:
    """Write a small portfolio and one user per role; return each role's bearer headers."""
    with Session(engine, expire_on_commit=False) as session:
        institution = contract.seed_portfolio(session)
        users = {role: make_user(session, institution, role=role) for role in ROLES}
        session.commit()
        return {role: bearer(user) for role, user in users.items()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, dict[str, dict[str, str]]]]:
    """A database of its own per backend (committed data must not leak into other tests)."""
    folder: Path = tmp_path_factory.mktemp("contract")
    with contract.seeded_engine(request.param, folder, prefix="recoup_contract") as engine:
        yield engine, _seed(engine)


@pytest.fixture(scope="module")
def schema(seeded: tuple[Engine, dict[str, dict[str, str]]]) -> Any:
    engine, _tokens = seeded
    return contract.schema_for(engine)


@pytest.fixture(scope="module")
def known(seeded: tuple[Engine, dict[str, dict[str, str]]]) -> dict[str, list[Any]]:
    engine, _tokens = seeded
    return contract.known_path_values(engine)


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


@pytest.mark.parametrize(("method", "path"), contract.operations())
def test_no_server_error_and_no_schema_violation(
    method: str,
    path: str,
    schema: Any,
    known: dict[str, list[Any]],
    headers_for: dict[tuple[str, str], dict[str, str]],
) -> None:
    contract.fuzz(
        schema[path][method],
        headers_for.get((method, path), {}),
        examples=EXAMPLES_PER_OPERATION,
        known=known,
    )
