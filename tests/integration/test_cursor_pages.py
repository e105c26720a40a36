"""Cursor pages on the debtor and account lists: every row once, in id order; page still works."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


def test_a_cursor_walks_the_whole_list_once(session: Session) -> None:
    institution = make_institution(session)
    manager = make_user(session, institution, role="manager")
    debtors = [make_debtor(session, institution) for _ in range(5)]
    accounts = [make_account(session, debtor) for debtor in debtors]
    make_debtor(session, make_institution(session))  # another tenant's: never listed
    with client_for(session) as client:
        for path, expected in (
            ("/api/v1/debtors", [debtor.id for debtor in debtors]),
            ("/api/v1/accounts", [account.id for account in accounts]),
        ):
            seen: list[int] = []
            answer = client.get(path, params={"size": 2}, headers=bearer(manager))
            while True:
                assert answer.status_code == 200, answer.text
                body = answer.json()
                seen.extend(item["id"] for item in body["items"])
                if body["next_cursor"] is None:
                    break
                answer = client.get(
                    path,
                    params={"size": 2, "cursor": body["next_cursor"]},
                    headers=bearer(manager),
                )
            assert seen == expected
            # Page numbers still work as before.
            second = client.get(path, params={"size": 2, "page": 2}, headers=bearer(manager))
            assert [item["id"] for item in second.json()["items"]] == expected[2:4]


def test_a_bad_cursor_or_another_order_is_refused(session: Session) -> None:
    institution = make_institution(session)
    manager = make_user(session, institution, role="manager")
    with client_for(session) as client:
        for params in ({"cursor": "not-a-cursor"}, {"cursor": "YWZ0ZXI6MQ", "sort": "dpd"}):
            body = assert_problem(
                client.get("/api/v1/accounts", params=params, headers=bearer(manager)), 422
            )
            assert body["errors"][0]["field"] == "query.cursor"  # type: ignore[index]
