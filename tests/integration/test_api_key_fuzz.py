"""Every API route fuzzed by schemathesis as an integration's API key holding every scope.

A core banking system, a CRM or a risk system calls Recoup with an API key, not a user's
token: the key's scopes, its idempotency keys and its per-key limits take other paths than a
user's. Each backend gets its own committed database with a small portfolio and one key with
every scope an API key may hold; each documented operation gets generated requests (a fixed,
derandomized set, so CI sees the same ones every run) and every answer must be below 500 with
a status code, content type and body the OpenAPI document declares. Operations whose
permission no API key can hold are called too (they must answer a documented 403), with fewer
examples since the request never passes the permission check.
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
from recoup.identity import service as identity
from recoup.identity.dependencies import route_rules
from recoup.identity.permissions import API_KEY_SCOPES
from tests import contract

pytestmark = pytest.mark.slow

EXAMPLES_IN_SCOPE = int(os.environ.get("RECOUP_FUZZ_EXAMPLES", "12"))
EXAMPLES_OUT_OF_SCOPE = 3


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, dict[str, str]]]:
    """A database of its own per backend and the headers of a key with every API scope."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    with contract.seeded_engine(request.param, folder, prefix="recoup_fuzz") as engine:
        with Session(engine, expire_on_commit=False) as session:
            institution = contract.seed_portfolio(session)
            plaintext, _key = identity.create_api_key(
                session,
                institution_id=institution.id,
                name="core banking and CRM",
                scopes=sorted(API_KEY_SCOPES),
                actor="test",
            )
            session.commit()
        yield engine, {"X-API-Key": plaintext}


@pytest.fixture(scope="module")
def schema(seeded: tuple[Engine, dict[str, str]]) -> Any:
    engine, _headers = seeded
    return contract.schema_for(engine)


@pytest.fixture(scope="module")
def known(seeded: tuple[Engine, dict[str, str]]) -> dict[str, list[Any]]:
    engine, _headers = seeded
    return contract.known_path_values(engine)


def _in_scope() -> frozenset[tuple[str, str]]:
    """The (method, path) of every route an API key with every scope may call."""
    return frozenset(
        (method.upper(), rule.path)
        for rule in route_rules(create_app())
        if set(rule.permissions) <= API_KEY_SCOPES
        for method in rule.methods
    )


IN_SCOPE = _in_scope()


def test_api_keys_reach_the_integration_routes() -> None:
    # The fuzzing below means little if the key could only ever meet 403s.
    assert {
        ("POST", "/api/v1/payments"),
        ("POST", "/api/v1/compliance/check"),
        ("GET", "/api/v1/kpis"),
    } <= IN_SCOPE


@pytest.mark.parametrize(("method", "path"), contract.operations())
def test_no_server_error_and_no_schema_violation(
    method: str,
    path: str,
    schema: Any,
    known: dict[str, list[Any]],
    seeded: tuple[Engine, dict[str, str]],
) -> None:
    _engine, headers = seeded
    examples = EXAMPLES_IN_SCOPE if (method, path) in IN_SCOPE else EXAMPLES_OUT_OF_SCOPE
    contract.fuzz(schema[path][method], headers, examples=examples, known=known)
