"""Date filters of the audit list: extreme moments are a 422 problem, not a 500."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "9999-12-31T23:59:59+14:00"},
        {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
    ],
)
def test_extreme_date_filters_are_422(session: Session, params: dict[str, str]) -> None:
    auditor = make_user(session, make_institution(session), role="auditor")
    with client_for(session) as client:
        answer = client.get("/api/v1/audit", params=params, headers=bearer(auditor))
    body = assert_problem(answer, 422)
    assert "between the years" in str(body["detail"])


def test_a_wide_but_supported_range_still_lists(session: Session) -> None:
    auditor = make_user(session, make_institution(session), role="auditor")
    with client_for(session) as client:
        answer = client.get(
            "/api/v1/audit",
            params={"since": "1900-01-01T00:00:00+14:00", "until": "2999-12-31T23:59:59-14:00"},
            headers=bearer(auditor),
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] >= 1  # the auditor's own creation
