"""POST /api/v1/payments/reversals: one reversal or a list, duplicates, scoping, idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import tasks as case_tasks
from recoup.identity import service as identity
from recoup.kit.clock import aware, utcnow
from recoup.models import Account, Institution, Payment
from recoup.models.audit import AuditEvent
from recoup.models.identity import User
from recoup.models.jobs import Job
from recoup.models.strategy import CaseStrategyState
from recoup.models.webhooks import WebhookEvent
from recoup.strategy import service as strategies
from recoup.strategy import tasks as strategy_tasks
from recoup.webhooks import service as webhooks
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.strategy.test_service import approve_preset_templates

PAID_AT = (utcnow() - timedelta(hours=2)).isoformat()
REVERSALS = "/api/v1/payments/reversals"
BALANCE = 1_065_000  # make_account's balance before any payment


def _key(session: Session, institution_id: int) -> dict[str, str]:
    text, _key = identity.create_api_key(
        session,
        institution_id=institution_id,
        name="core banking",
        scopes=["payments:write"],
        actor="test",
    )
    return {"Authorization": f"Bearer {text}"}


def _pay(client: TestClient, headers: dict[str, str], account: Account, external_id: str) -> int:
    answer = client.post(
        "/api/v1/payments",
        json={
            "external_id": external_id,
            "account_external_id": account.external_id,
            "amount": "100.00",
            "currency": "CNY",
            "paid_at": PAID_AT,
            "channel": "bank_transfer",
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["payment_id"])


def _reversal(external_id: str, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "reason": "cheque bounced", **extra}


def _payment(session: Session, payment_id: int) -> Payment:
    payment = session.get(Payment, payment_id)
    assert payment is not None
    session.refresh(payment)
    return payment


class TestOneReversal:
    def test_reversed_then_a_duplicate(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        at = (utcnow() - timedelta(minutes=30)).replace(microsecond=0)
        with client_for(session) as client:
            payment_id = _pay(client, headers, account, "P1")
            session.refresh(account)
            assert account.balance == BALANCE - 10_000
            first = client.post(
                REVERSALS, json=_reversal("P1", reversed_at=at.isoformat()), headers=headers
            )
            assert first.status_code == 201, first.text
            assert first.json() == {
                "external_id": "P1",
                "status": "reversed",
                "payment_id": payment_id,
            }
            again = client.post(REVERSALS, json=_reversal("P1"), headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "status": "duplicate"}
        payment = _payment(session, payment_id)
        assert payment.reversed_at is not None
        assert aware(payment.reversed_at) == at
        assert payment.reversal_reason == "cheque bounced"
        session.refresh(account)
        assert account.balance == BALANCE
        audited = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "payment.reverse", AuditEvent.object_id == str(payment_id)
            )
        ).all()
        assert len(audited) == 1
        assert audited[0].actor.startswith("apikey:")
        assert audited[0].details["reason"] == "cheque bounced"

    def test_reversed_at_defaults_to_now_and_the_webhook_goes_out(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        webhooks.create_subscription(
            session,
            institution_id=institution.id,
            url="https://crm.example.com/hooks",
            event_types=["payment.reversed"],
            actor="admin",
        )
        before = utcnow()
        with client_for(session) as client:
            payment_id = _pay(client, headers, account, "P2")
            answer = client.post(REVERSALS, json=_reversal("P2"), headers=headers)
        assert answer.status_code == 201, answer.text
        payment = _payment(session, payment_id)
        assert payment.reversed_at is not None
        assert before <= aware(payment.reversed_at) <= utcnow()
        events = session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.institution_id == institution.id,
                WebhookEvent.type == "payment.reversed",
            )
        ).all()
        assert [event.data["payment_id"] for event in events] == [payment_id]

    def test_without_reversed_at_a_payment_dated_ahead_is_reversed_at_its_paid_at(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        # The sender's clock runs a few minutes ahead (payments allow for it).
        ahead = (utcnow() + timedelta(minutes=3)).replace(microsecond=0)
        with client_for(session) as client:
            paid = client.post(
                "/api/v1/payments",
                json={
                    "external_id": "AHEAD-1",
                    "account_external_id": account.external_id,
                    "amount": "100.00",
                    "currency": "CNY",
                    "paid_at": ahead.isoformat(),
                    "channel": "bank_transfer",
                },
                headers=headers,
            )
            assert paid.status_code == 201, paid.text
            answer = client.post(REVERSALS, json=_reversal("AHEAD-1"), headers=headers)
        assert answer.status_code == 201, answer.text
        payment = _payment(session, int(paid.json()["payment_id"]))
        assert payment.reversed_at is not None
        assert aware(payment.reversed_at) == ahead

    def test_an_unknown_payment_is_not_found(self, session: Session) -> None:
        institution = make_institution(session)
        with client_for(session) as client:
            body = assert_problem(
                client.post(
                    REVERSALS, json=_reversal("NEVER-SENT"), headers=_key(session, institution.id)
                ),
                404,
            )
        assert "NEVER-SENT" in str(body["detail"])

    def test_another_institutions_payment_is_unknown(self, session: Session) -> None:
        institution, other = make_institution(session), make_institution(session)
        foreign = make_account(session, make_debtor(session, other))
        with client_for(session) as client:
            payment_id = _pay(client, _key(session, other.id), foreign, "SHARED-1")
            mine = assert_problem(
                client.post(
                    REVERSALS, json=_reversal("SHARED-1"), headers=_key(session, institution.id)
                ),
                404,
            )
            unknown = assert_problem(
                client.post(
                    REVERSALS, json=_reversal("NOPE-1"), headers=_key(session, institution.id)
                ),
                404,
            )
        # The same answer as for a payment never recorded: nothing tells it exists elsewhere.
        assert mine["detail"] == str(unknown["detail"]).replace("NOPE-1", "SHARED-1")
        assert _payment(session, payment_id).reversed_at is None
        session.refresh(foreign)
        assert foreign.balance == BALANCE - 10_000

    def test_refusals_name_the_field(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        future = (utcnow() + timedelta(hours=1)).isoformat()
        with client_for(session) as client:
            payment_id = _pay(client, headers, account, "P3")
            for body, field in (
                ({"external_id": "P3"}, "body.reason"),
                (_reversal("P3", reason=""), "body.reason"),
                (_reversal("P3", reason="   "), "body.reason"),
                (_reversal("P3", reason="x" * 256), "body.reason"),
                (_reversal("P3", reversed_at="2026-12-01T10:00:00"), "body.reversed_at"),
                (_reversal("P3", reversed_at=future), "body.reversed_at"),
                (_reversal("P 3"), "body.external_id"),
                ({"reason": "cheque bounced"}, "body.external_id"),
                (_reversal("P3", amount="100.00"), "body.amount"),
            ):
                problem = assert_problem(client.post(REVERSALS, json=body, headers=headers), 422)
                fields = [item["field"] for item in problem["errors"]]  # type: ignore[attr-defined]
                assert field in fields, (body, problem)
        assert _payment(session, payment_id).reversed_at is None

    def test_a_key_without_the_payments_scope_is_forbidden(self, session: Session) -> None:
        institution = make_institution(session)
        text, _ = identity.create_api_key(
            session,
            institution_id=institution.id,
            name="reader",
            scopes=["accounts:read"],
            actor="test",
        )
        with client_for(session) as client:
            answer = client.post(
                REVERSALS, json=_reversal("P4"), headers={"Authorization": f"Bearer {text}"}
            )
        assert answer.status_code == 403, answer.text


class TestAList:
    def test_valid_items_go_through_and_bad_ones_name_index_and_field(
        self, session: Session
    ) -> None:
        institution, other = make_institution(session), make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        foreign = make_account(session, make_debtor(session, other))
        headers = _key(session, institution.id)
        with client_for(session) as client:
            first = _pay(client, headers, account, "L1")
            second = _pay(client, headers, account, "L2")
            _pay(client, _key(session, other.id), foreign, "L3")
            answer = client.post(
                REVERSALS,
                json=[
                    _reversal("L1"),
                    _reversal("MISSING"),
                    _reversal("L3"),
                    {"external_id": "L2"},
                    _reversal("L1"),
                    _reversal("L2", reason="keyed in twice"),
                ],
                headers=headers,
            )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [(item["index"], item["status"], item["id"]) for item in results] == [
            (0, "reversed", first),
            (1, "rejected", None),
            (2, "rejected", None),
            (3, "rejected", None),
            (4, "duplicate", first),
            (5, "reversed", second),
        ]
        assert [error["field"] for error in results[1]["errors"]] == ["external_id"]
        assert results[1]["errors"][0]["code"] == "not_found"
        assert results[2]["errors"] == [
            {
                **results[1]["errors"][0],
                "message": results[1]["errors"][0]["message"].replace("MISSING", "L3"),
            }
        ]
        assert [error["field"] for error in results[3]["errors"]] == ["reason"]
        assert answer.json()["counts"] == {"reversed": 2, "rejected": 3, "duplicate": 1}
        assert _payment(session, second).reversal_reason == "keyed in twice"
        session.refresh(account)
        assert account.balance == BALANCE

    def test_a_reversal_dated_before_its_payment_is_refused_and_the_others_go_through(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id)
        before_paid = (aware(datetime.fromisoformat(PAID_AT)) - timedelta(days=1)).isoformat()
        with client_for(session) as client:
            early = _pay(client, headers, account, "E1")
            fine = _pay(client, headers, account, "E2")
            answer = client.post(
                REVERSALS,
                json=[
                    _reversal("E1", reversed_at=before_paid),
                    _reversal("E2", reversed_at=PAID_AT),
                ],
                headers=headers,
            )
            single = assert_problem(
                client.post(
                    REVERSALS, json=_reversal("E1", reversed_at=before_paid), headers=headers
                ),
                422,
            )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [(item["status"], item["id"]) for item in results] == [
            ("rejected", None),
            ("reversed", fine),
        ]
        (error,) = results[0]["errors"]
        assert error["field"] == "reversed_at"
        assert error["code"] == "reversed_before_paid"
        assert "before the payment was made" in error["message"]
        assert "at or after its paid_at" in error["message"]
        assert single["errors"][0]["field"] == "body.reversed_at"  # type: ignore[index]
        assert _payment(session, early).reversed_at is None
        assert _payment(session, fine).reversed_at is not None
        session.refresh(account)
        assert account.balance == BALANCE - 10_000

    def test_more_than_a_thousand_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        items = [_reversal(f"M{n}") for n in range(1_001)]
        with client_for(session) as client:
            assert_problem(
                client.post(REVERSALS, json=items, headers=_key(session, institution.id)), 422
            )


def test_an_idempotency_key_replays_the_first_answer(session: Session) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    headers = _key(session, institution.id)
    with client_for(session) as client:
        payment_id = _pay(client, headers, account, "K1")
        keyed = {**headers, "Idempotency-Key": "reverse-K1"}
        first = client.post(REVERSALS, json=_reversal("K1"), headers=keyed)
        assert first.status_code == 201, first.text
        again = client.post(REVERSALS, json=_reversal("K1"), headers=keyed)
        other = client.post(REVERSALS, json=_reversal("K1", reason="another"), headers=keyed)
    # The replay repeats the first answer (201 reversed), not a new "duplicate".
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        again.json()
        == first.json()
        == {
            "external_id": "K1",
            "status": "reversed",
            "payment_id": payment_id,
        }
    )
    refused = assert_problem(other, 422)
    assert refused["errors"] == [
        {"field": "header.Idempotency-Key", "message": "already used for another request"}
    ]
    audited = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "payment.reverse", AuditEvent.object_id == str(payment_id)
        )
    ).all()
    assert len(audited) == 1


def test_an_agent_reverses_only_payments_of_accounts_they_work(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    account = make_account(session, make_debtor(session, institution))
    with client_for(session) as client:
        payment_id = _pay(client, _key(session, institution.id), account, "G1")
        answer = client.post(REVERSALS, json=_reversal("G1"), headers=bearer(agent))
    assert_problem(answer, 404)
    assert _payment(session, payment_id).reversed_at is None


class TestTheCase:
    """A reversal moves the account's case at once, not at the next sync or cycle."""

    @staticmethod
    def _active_strategy(session: Session) -> Institution:
        institution = make_institution(session)
        approve_preset_templates(session, institution)
        strategy, _ = strategies.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        strategies.activate(
            session, institution=institution, strategy=strategy, number=1, actor="m"
        )
        return institution

    @staticmethod
    def _cases(client: TestClient, manager: User, debtor_id: int) -> list[dict[str, Any]]:
        answer = client.get("/api/v1/cases", headers=bearer(manager))
        assert answer.status_code == 200, answer.text
        found = [case for case in answer.json()["items"] if case["debtor_id"] == debtor_id]
        return [
            client.get(f"/api/v1/cases/{case['id']}", headers=bearer(manager)).json()
            for case in sorted(found, key=lambda case: case["id"])
        ]

    def test_a_case_the_payment_cured_opens_again_with_the_reversal_named(
        self, session: Session
    ) -> None:
        institution = self._active_strategy(session)
        debtor = make_debtor(session, institution)
        account = make_account(session, debtor)  # 45 days past due, 1,000.00 overdue
        manager = make_user(session, institution, role="manager")
        headers = _key(session, institution.id)
        case_tasks.sync(session, {"institution_id": institution.id})
        with client_for(session) as client:
            paid = client.post(
                "/api/v1/payments",
                json={
                    "external_id": "CURE-1",
                    "account_external_id": account.external_id,
                    "amount": "1000.00",
                    "currency": "CNY",
                    "paid_at": PAID_AT,
                    "channel": "bank_transfer",
                },
                headers=headers,
            )
            assert paid.status_code == 201, paid.text
            # The sync payments ask for closes the case the payment cured.
            case_tasks.sync(session, {"institution_id": institution.id})
            (cured,) = self._cases(client, manager, debtor.id)
            assert (cured["state"], cured["reason"]) == ("closed", "cured")
            answer = client.post(REVERSALS, json=_reversal("CURE-1"), headers=headers)
            assert answer.status_code == 201, answer.text
            # No sync and no cycle ran: the reversal itself put the account back in a case.
            old, new = self._cases(client, manager, debtor.id)
        assert old["id"] == cured["id"]
        assert (old["state"], old["reason"]) == ("closed", "cured")
        assert new["state"] == "open"
        assert [item["id"] for item in new["accounts"]] == [account.id]
        assert new["accounts"][0]["status"] == "delinquent"
        events = [item["event"] for item in new["history"]]
        assert "opened" in events
        assert "payment_reversed" in events
        (reversal,) = [item for item in new["history"] if item["event"] == "payment_reversed"]
        assert reversal["note"] == "payment CURE-1 of 1000.00 CNY reversed: cheque bounced"
        assert reversal["actor"].startswith("apikey:")
        # The strategy re-routes the new case by its event rules (the job asked for at once).
        (job,) = session.execute(
            select(Job).where(
                Job.name == "strategy.on_event",
                Job.payload["case_id"].as_integer() == new["id"],
            )
        ).scalars()
        assert job.payload["case_event"] == "payment_reversed"
        strategy_tasks.on_event(session, job.payload)
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == new["id"])
        ).scalar_one()
        assert state.source == "payment_reversed"
        assert state.reason_code == "reversed"
        assert state.step not in {None, "cured"}

    def test_a_live_case_names_the_reversal_and_no_case_opens(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        account = make_account(session, debtor)
        manager = make_user(session, institution, role="manager")
        headers = _key(session, institution.id)
        case_tasks.sync(session, {"institution_id": institution.id})
        with client_for(session) as client:
            _pay(client, headers, account, "PART-1")  # 100.00 of 1,000.00 overdue
            case_tasks.sync(session, {"institution_id": institution.id})
            answer = client.post(REVERSALS, json=_reversal("PART-1"), headers=headers)
            assert answer.status_code == 201, answer.text
            (case,) = self._cases(client, manager, debtor.id)
        assert case["state"] == "open"
        notes = [item["note"] for item in case["history"] if item["event"] == "payment_reversed"]
        assert notes == ["payment PART-1 of 100.00 CNY reversed: cheque bounced"]
