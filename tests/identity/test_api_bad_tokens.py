"""Forged or absurd bearer tokens are a 401 problem, never a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy.orm import Session

from recoup.identity import rules
from recoup.identity.service import TOKEN_ALGORITHM, secret_key
from recoup.kit.clock import utcnow
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, client_for, make_user


def _token(**changes: Any) -> str:
    claims = rules.access_claims(
        user_id=1, session_version=1, issued_at=utcnow(), lifetime=timedelta(minutes=5)
    )
    return jwt.encode({**claims, **changes}, secret_key(), algorithm=TOKEN_ALGORITHM)


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": str(2**70)},
        {"sub": "9" * 5000},
        {"sub": "١٢"},
        {"sub": "²"},
        {"sub": "0"},
        {"exp": 2**70},
    ],
    ids=[
        "sub-2^70",
        "sub-5000-digits",
        "sub-arabic-digits",
        "sub-superscript",
        "sub-0",
        "exp-2^70",
    ],
)
def test_absurd_claims_are_401(session: Session, changes: dict[str, Any]) -> None:
    make_user(session, make_institution(session), role="admin")
    with client_for(session) as client:
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {_token(**changes)}"})
    assert_problem(answer, 401)


class TestClaims:
    def test_a_subject_beyond_64_bits_names_no_user(self) -> None:
        claims = rules.access_claims(
            user_id=2**70, session_version=1, issued_at=utcnow(), lifetime=timedelta(minutes=5)
        )
        with pytest.raises(rules.TokenRejected, match="names no user"):
            rules.check_access_claims(claims, now=utcnow())

    def test_the_largest_64_bit_subject_is_still_read(self) -> None:
        claims = rules.access_claims(
            user_id=2**63 - 1, session_version=1, issued_at=utcnow(), lifetime=timedelta(minutes=5)
        )
        assert rules.check_access_claims(claims, now=utcnow()).user_id == 2**63 - 1
