"""PUT /api/v1/accounts: accounts and balances upserted by external id, checked like a file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.identity import service as identity
from recoup.models import Account
from recoup.models.ingest import ImportRun
from tests.factories import make_debtor, make_institution
from tests.identity.helpers import assert_problem, client_for


def _key(session: Session, institution_id: int) -> dict[str, str]:
    text, _key = identity.create_api_key(
        session, institution_id=institution_id, name="core", scopes=["imports:write"], actor="t"
    )
    return {"Authorization": f"Bearer {text}"}


def _account(external_id: str, debtor_external_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "debtor_external_id": debtor_external_id,
        "product": "consumer_loan",
        "principal": "12000.00",
        "interest": "350.00",
        "days_past_due": 45,
        **extra,
    }


def test_insert_update_and_per_item_refusals(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    headers = _key(session, institution.id)
    with client_for(session) as client:
        first = client.put(
            "/api/v1/accounts",
            json=[
                _account("API-1", debtor.external_id),
                _account("API-2", debtor.external_id, principal="12.345"),
                _account("API-3", "NO-SUCH-DEBTOR"),
                _account("API-4", debtor.external_id, principal=12000.5),
                {**_account("API-5", debtor.external_id), "colour": "red"},
            ],
            headers=headers,
        )
        assert first.status_code == 200, first.text
        results = first.json()["results"]
        assert [item["status"] for item in results] == [
            "accepted",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
        ]
        assert [item["errors"][0]["field"] for item in results[1:]] == [
            "principal",
            "debtor_external_id",
            "principal",
            "colour",
        ]
        assert first.json()["counts"]["inserted"] == 1
        # One account alone: updated in place; refused alone: a 422 naming the field.
        again = client.put(
            "/api/v1/accounts",
            json=_account("API-1", debtor.external_id, principal="11000.00", days_past_due=75),
            headers=headers,
        )
        assert again.status_code == 200, again.text
        assert again.json()["counts"]["updated"] == 1
        refused = assert_problem(
            client.put(
                "/api/v1/accounts",
                json=_account("API-9", debtor.external_id, days_past_due="soon"),
                headers=headers,
            ),
            422,
        )
        assert refused["errors"][0]["field"] == "body.days_past_due"  # type: ignore[index]
    account = session.scalars(select(Account).where(Account.external_id == "API-1")).one()
    assert (account.principal, account.days_past_due, account.bucket) == (1_100_000, 75, "M3")
    runs = session.scalars(
        select(ImportRun).where(ImportRun.institution_id == institution.id)
    ).all()
    assert [run.file_name for run in runs] == ["api", "api"]  # the refused one rolled back
