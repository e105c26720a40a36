"""Schemathesis against the app's own OpenAPI document (for the contract and fuzz tests).

``seeded_engine`` gives a committed database of its own per backend (a SQLite file, or a
PostgreSQL schema), ``seed_portfolio`` writes a small portfolio into it, ``schema_for`` loads
the OpenAPI document of an app whose requests use that database, ``operations`` lists every
documented operation and ``fuzz`` feeds one operation generated requests with the caller's
credentials and checks every answer: below 500, with a status code, a content type and a body
the document declares.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import Request
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.db import get_session, make_engine, settled
from recoup.kit.clock import utcnow
from recoup.models import Account, ApiKey, Base, Debtor, Institution
from recoup.models.cases import Case
from recoup.models.compliance import ContactDecision, MessageTemplate
from recoup.models.strategy import Strategy
from recoup.models.webhooks import WebhookDelivery, WebhookSubscription
from recoup.models.workbench import Promise
from recoup.webhooks import service as webhooks
from tests.conftest import POSTGRES_URL, _postgres_engine
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.workbench.helpers import add_payment, add_promise

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Generated credentials would only ever meet the 401 path: the test's caller replaces them.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


@contextmanager
def seeded_engine(backend: str, folder: Path, *, prefix: str) -> Iterator[Engine]:
    """A fresh database with every table, on ``backend``, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{folder / f'{prefix}.db'}")
    else:
        found = _postgres_engine(schema)
        if found is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (required in CI)")
        engine = found
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if backend == "postgresql":
            cleanup = make_engine(POSTGRES_URL)
            with cleanup.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            cleanup.dispose()


def seed_portfolio(session: Session) -> Institution:
    """Write an institution with three debtors, each with a contact point, an account in a
    case, a promise and a payment, and a webhook subscription, so generated requests meet
    real rows; return the institution."""
    institution = make_institution(session)
    today = utcnow().date()
    for _ in range(3):
        debtor = make_debtor(session, institution)
        make_contact_point(session, debtor)
        account = make_account(session, debtor)
        give_to_agent(session, account, None)
        add_promise(
            session,
            account,
            amount=10_000,
            promised_on=today - timedelta(days=10),
            due_date=today + timedelta(days=5),
        )
        add_payment(session, account, amount=1_000, paid_at=utcnow() - timedelta(days=2))
    webhooks.create_subscription(
        session,
        institution_id=institution.id,
        # A name that never resolves (RFC 2606): nothing is ever sent out.
        url="https://recoup-events.invalid/recoup-events",
        event_types=["payment.received"],
        actor="test",
    )
    return institution


# The rows whose ids a path parameter names (what ``known_path_values`` looks up).
_PATH_ROWS: dict[str, Any] = {
    "debtor_id": Debtor.id,
    "account_id": Account.id,
    "case_id": Case.id,
    "promise_id": Promise.id,
    "strategy_id": Strategy.id,
    "template_id": MessageTemplate.id,
    "decision_id": ContactDecision.id,
    "subscription_id": WebhookSubscription.id,
    "delivery_id": WebhookDelivery.id,
    "api_key_id": ApiKey.id,
}


def known_path_values(engine: Engine) -> dict[str, list[Any]]:
    """The ids of real rows by path parameter name, and the codes of real things, so about
    half of the generated requests name something that exists (past the 404)."""
    with Session(engine) as session:
        found: dict[str, list[Any]] = {
            name: list(session.scalars(select(column).order_by(column).limit(5)))
            for name, column in _PATH_ROWS.items()
        }
        found["institution_code"] = list(session.scalars(select(Institution.code)))
    found["code"] = ["cn", "CN"]
    found["version"] = [1]
    return {name: values for name, values in found.items() if values}


def schema_for(engine: Engine) -> Any:
    """The app's own OpenAPI document, loaded by schemathesis against the app in-process."""
    app = create_app()

    def _session(request: Request) -> Iterator[Session]:
        # Like the real unit of work: commit on success, roll back on an error or a refusal.
        with Session(engine, expire_on_commit=False) as session, settled(session, request):
            yield session

    app.dependency_overrides[get_session] = _session
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations() -> list[Any]:
    """Every operation of the OpenAPI document, as ``(method, path)`` test parameters."""
    spec = create_app().openapi()
    return [
        pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
        for path, operations in spec["paths"].items()
        for method in operations
    ]


def fuzz(
    operation: Any,
    headers: dict[str, str],
    *,
    examples: int,
    known: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """Call ``operation`` with ``examples`` generated requests as the caller of ``headers``;
    fail on a 5xx or an answer the document does not declare. A path parameter named in
    ``known`` takes one of its real values in about half of the requests."""

    @given(case=operation.as_strategy(), pick=st.integers(min_value=-4, max_value=4))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure here is never a fluke
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case: Any, pick: int) -> None:
        for name in case.path_parameters or {}:
            values = (known or {}).get(name)
            if values and pick >= 0:
                case.path_parameters[name] = values[pick % len(values)]
        generated = {
            key: value
            for key, value in (case.headers or {}).items()
            if key.lower() not in CREDENTIAL_HEADERS
        }
        case.headers = {**generated, **headers}
        case.call_and_validate(checks=CHECKS)

    call()
