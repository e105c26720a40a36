"""POST /api/v1/payments: one payment or a list, per-item results, duplicates, scoping, events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.identity import service as identity
from recoup.kit.clock import utcnow
from recoup.models import Account, Payment
from recoup.models.webhooks import WebhookEvent
from recoup.webhooks import service as webhooks
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

PAID_AT = (utcnow() - timedelta(hours=1)).isoformat()


def _key(session: Session, institution_id: int) -> dict[str, str]:
    text, _key = identity.create_api_key(
        session,
        institution_id=institution_id,
        name="core banking",
        scopes=["payments:write"],
        actor="test",
    )
    return {"Authorization": f"Bearer {text}"}


def _payment(
    external_id: str, account: Account, amount: str = "100.00", **extra: Any
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "account_external_id": account.external_id,
        "amount": amount,
        "currency": "CNY",
        "paid_at": PAID_AT,
        "channel": "bank_transfer",
        **extra,
    }


def _payments(session: Session, account: Account) -> int:
    query = select(func.count()).select_from(Payment).where(Payment.account_id == account.id)
    return session.scalar(query) or 0


class TestOnePayment:
    def test_recorded_then_a_duplicate(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        with client_for(session) as client:
            first = client.post("/api/v1/payments", json=_payment("P1", account), headers=headers)
            assert first.status_code == 201, first.text
            assert first.json()["status"] == "applied"
            again = client.post("/api/v1/payments", json=_payment("P1", account), headers=headers)
        assert again.status_code == 200
        assert again.json() == {**first.json(), "status": "duplicate"}
        assert _payments(session, account) == 1
        session.refresh(account)
        assert account.balance == 1_065_000 - 10_000

    def test_by_recoup_account_id(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        body = _payment("P2", account)
        del body["account_external_id"]
        body["account_id"] = account.id
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/payments", json=body, headers=_key(session, institution.id)
            )
        assert answer.status_code == 201, answer.text
        assert _payments(session, account) == 1

    def test_refusals_name_the_field(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        with client_for(session) as client:
            for change, field in (
                ({"amount": "12.345"}, "body.amount"),
                ({"amount": "1,000"}, "body.amount"),
                ({"amount": 100.5}, "body.amount"),
                ({"currency": "USD"}, "body.currency"),
                ({"channel": "pigeon"}, "body.channel"),
                ({"paid_at": "2026-12-01T10:00:00"}, "body.paid_at"),
                ({"account_external_id": None}, "body.account_external_id"),
            ):
                body = assert_problem(
                    client.post(
                        "/api/v1/payments", json=_payment("P3", account, **change), headers=headers
                    ),
                    422,
                )
                fields = [item["field"] for item in body["errors"]]  # type: ignore[union-attr]
                assert field in fields, (change, body)
            assert_problem(
                client.post(
                    "/api/v1/payments",
                    json=_payment("P3", account, account_external_id="NOPE"),
                    headers=headers,
                ),
                404,
            )
        assert _payments(session, account) == 0

    def test_another_institutions_account_is_not_found(self, session: Session) -> None:
        institution, other = make_institution(session), make_institution(session)
        foreign = make_account(session, make_debtor(session, other))
        body = _payment("P4", foreign)
        with client_for(session) as client:
            assert_problem(
                client.post("/api/v1/payments", json=body, headers=_key(session, institution.id)),
                404,
            )
            del body["account_external_id"]
            body["account_id"] = foreign.id
            assert_problem(
                client.post("/api/v1/payments", json=body, headers=_key(session, institution.id)),
                404,
            )
        assert _payments(session, foreign) == 0


class TestAList:
    def test_valid_items_go_through_and_bad_ones_name_index_and_field(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        items = [
            _payment("L1", account),
            _payment("L2", account, amount="-5"),
            {"external_id": "L3"},
            _payment("L4", account, account_external_id="MISSING"),
            _payment("L1", account),
            _payment("L5", account, amount="25.50"),
        ]
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/payments", json=items, headers=_key(session, institution.id)
            )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [(item["index"], item["status"]) for item in results] == [
            (0, "applied"),
            (1, "rejected"),
            (2, "rejected"),
            (3, "rejected"),
            (4, "duplicate"),
            (5, "applied"),
        ]
        assert results[1]["errors"][0]["field"] == "amount"
        assert {error["field"] for error in results[2]["errors"]} >= {"amount", "paid_at"}
        assert results[3]["errors"][0]["code"] == "not_found"
        assert results[4]["id"] == results[0]["id"]
        assert answer.json()["counts"] == {"applied": 2, "rejected": 3, "duplicate": 1}
        assert _payments(session, account) == 2

    def test_more_than_a_thousand_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        items = [_payment(f"M{n}", account) for n in range(1_001)]
        with client_for(session) as client:
            assert_problem(
                client.post("/api/v1/payments", json=items, headers=_key(session, institution.id)),
                422,
            )


class TestEvents:
    def test_a_payment_that_cures_emits_both_events(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        webhooks.create_subscription(
            session,
            institution_id=institution.id,
            url="https://crm.example.com/hooks",
            event_types=["payment.received", "account.cured"],
            actor="admin",
        )
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/payments",
                json=_payment("C1", account, amount="1000.00"),
                headers=_key(session, institution.id),
            )
        assert answer.status_code == 201, answer.text
        events = session.scalars(
            select(WebhookEvent).where(WebhookEvent.institution_id == institution.id)
        ).all()
        assert sorted(event.type for event in events) == ["account.cured", "payment.received"]
        received = next(event for event in events if event.type == "payment.received")
        assert received.data == {
            "payment_id": answer.json()["payment_id"],
            "account_id": account.id,
            "amount_minor": 100_000,
            "currency": "CNY",
            "channel": "bank_transfer",
        }


def test_an_agent_posts_only_to_accounts_they_work(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    account = make_account(session, make_debtor(session, institution))
    with client_for(session) as client:
        assert_problem(
            client.post("/api/v1/payments", json=_payment("G1", account), headers=bearer(agent)),
            404,
        )
