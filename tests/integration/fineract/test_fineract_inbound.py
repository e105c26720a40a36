"""Fineract into Recoup: the loan import (service and CLI) and the events endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cli import app as cli_app
from recoup.db import unit_of_work
from recoup.identity import service as identity
from recoup.identity.scoping import institution_scope
from recoup.integration import service
from recoup.models import Account, Debtor, Institution, Payment
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, client_for
from tests.integration.fineract.test_mapping import fixture

HERE = Path(__file__).parent
EVENTS = "/api/v1/integrations/fineract/events"
LOAN_1 = "95174ff9-1a75-4d72-a413-6f9b1cb988b7"


def _institution(session: Session) -> Institution:
    return make_institution(session, currency="USD")


def _import(session: Session, institution: Institution, *loans: dict[str, Any]) -> Any:
    return service.import_fineract_loans(
        session,
        institution=institution,
        principal=institution_scope(institution.id, actor="test"),
        loans=list(loans),
    )


def _account(session: Session, institution: Institution, external_id: str) -> Account:
    query = select(Account).where(
        Account.institution_id == institution.id, Account.external_id == external_id
    )
    account = session.scalars(query).one()
    session.refresh(account)
    return account


def _payments(session: Session, account: Account) -> list[str]:
    query = select(Payment.external_id).where(Payment.account_id == account.id)
    return sorted(session.scalars(query))


def _key(session: Session, institution: Institution) -> dict[str, str]:
    text, _ = identity.create_api_key(
        session,
        institution_id=institution.id,
        name="fineract relay",
        scopes=["imports:write"],
        actor="test",
    )
    return {"Authorization": f"Bearer {text}"}


class TestImport:
    def test_loans_become_debtors_accounts_and_payments(self, session: Session) -> None:
        institution = _institution(session)
        done = _import(session, institution, fixture("loan_delinquent.json"))
        assert [loan.status for loan in done.loans] == ["accepted"]
        assert done.debtors_created == 1
        assert done.accounts_inserted == 1
        account = _account(session, institution, LOAN_1)
        # Fineract's balances stand after Recoup's waterfall applied the repayment.
        assert (account.principal, account.interest, account.fees, account.penalty) == (
            800_000,
            42_050,
            3_000,
            1_500,
        )
        assert account.days_past_due == 35
        assert account.overdue_amount == 125_000
        assert account.currency == "USD"
        assert str(account.status) == "delinquent"
        assert _payments(session, account) == ["fineract:txn:12"]
        debtor = session.get(Debtor, account.debtor_id)
        assert debtor is not None
        assert debtor.external_id == "fineract:client:1"

    def test_again_changes_nothing(self, session: Session) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        again = _import(session, institution, fixture("loan_delinquent.json"))
        assert again.debtors_created == 0
        assert again.accounts_inserted == 0
        assert again.payments == {"duplicate": 1}
        account = _account(session, institution, LOAN_1)
        assert account.principal == 800_000
        assert _payments(session, account) == ["fineract:txn:12"]

    def test_a_bad_loan_is_refused_the_others_kept(self, session: Session) -> None:
        institution = _institution(session)
        page = fixture("loans_page.json")
        done = _import(session, institution, *page["pageItems"])
        assert [loan.status for loan in done.loans] == ["accepted", "accepted", "rejected"]
        refused = done.loans[2]
        assert refused.loan_id == 3
        assert refused.errors[0].field == "summary.principalOutstanding"
        closed = _account(session, institution, "fineract:loan:2")
        assert str(closed.status) == "closed"


class TestCli:
    def test_import_a_dump(self, cli_db: str, tmp_path: Path) -> None:
        with unit_of_work() as session:
            code = _institution(session).code
        dump = tmp_path / "loans.json"
        dump.write_text((HERE / "loans_page.json").read_text(encoding="utf-8"), encoding="utf-8")
        runner = CliRunner()
        result = runner.invoke(
            cli_app, ["integrate", "fineract-import", str(dump), "--institution", code]
        )
        assert result.exit_code == 3, result.output
        assert "summary.principalOutstanding" in result.output
        assert "loan 3" in result.output
        with unit_of_work() as session:
            count = session.scalar(select(func.count()).select_from(Account))
        assert count == 2

    def test_not_a_dump(self, cli_db: str, tmp_path: Path) -> None:
        with unit_of_work() as session:
            code = _institution(session).code
        dump = tmp_path / "loans.json"
        dump.write_text(json.dumps({"totalFilteredRecords": 0}), encoding="utf-8")
        result = CliRunner().invoke(
            cli_app, ["integrate", "fineract-import", str(dump), "--institution", code]
        )
        assert result.exit_code == 1
        assert "pageItems" in result.output


class TestEvents:
    def test_a_delinquency_change_then_a_repayment(self, session: Session) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        headers = _key(session, institution)
        with client_for(session) as client:
            change = client.post(
                EVENTS, json=fixture("event_delinquency_range_change.json"), headers=headers
            )
            repayment = client.post(EVENTS, json=fixture("event_repayment.json"), headers=headers)
        assert change.status_code == 200, change.text
        assert change.json() == {
            "key": "4b7c1f0e-3c1d-4c55-9a4a-0f6f1c2d9e21",
            "type": "LoanDelinquencyRangeChangeBusinessEvent",
            "status": "applied",
            "account_external_id": LOAN_1,
            "detail": "45 days past due (RANGE_45)",
        }
        assert repayment.status_code == 200, repayment.text
        assert repayment.json()["status"] == "applied"
        account = _account(session, institution, LOAN_1)
        assert account.days_past_due == 45
        assert _payments(session, account) == ["fineract:txn:12", "fineract:txn:31"]

    def test_the_same_event_twice_is_a_duplicate(self, session: Session) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        headers = _key(session, institution)
        message = fixture("event_repayment.json")
        with client_for(session) as client:
            first = client.post(EVENTS, json=message, headers=headers)
            again = client.post(EVENTS, json=message, headers=headers)
        assert first.json()["status"] == "applied"
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
        assert again.json()["detail"] == "already applied"
        account = _account(session, institution, LOAN_1)
        assert _payments(session, account) == ["fineract:txn:12", "fineract:txn:31"]

    def test_a_loan_event_creates_the_account(self, session: Session) -> None:
        institution = _institution(session)
        with client_for(session) as client:
            answer = client.post(
                EVENTS, json=fixture("event_loan_account.json"), headers=_key(session, institution)
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["account_external_id"] == "LN-4"
        account = _account(session, institution, "LN-4")
        assert (account.principal, account.days_past_due) == (420_000, 25)

    def test_other_events_are_ignored(self, session: Session) -> None:
        institution = _institution(session)
        message = fixture("event_repayment.json")
        message.update(
            type="LoanApprovedBusinessEvent",
            dataschema="org.apache.fineract.avro.loan.v1.LoanChargeDataV1",
            idempotencyKey="other-1",
        )
        with client_for(session) as client:
            answer = client.post(EVENTS, json=message, headers=_key(session, institution))
        assert answer.status_code == 200
        assert answer.json()["status"] == "ignored"

    def test_an_unknown_loan_is_refused_and_not_remembered(self, session: Session) -> None:
        institution = _institution(session)
        headers = _key(session, institution)
        message = fixture("event_delinquency_range_change.json")
        with client_for(session) as client:
            refused = client.post(EVENTS, json=message, headers=headers)
            body = assert_problem(refused, 422)
            assert "import the loan first" in str(body["detail"])
            _import(session, institution, fixture("loan_delinquent.json"))
            retried = client.post(EVENTS, json=message, headers=headers)
        assert retried.json()["status"] == "applied"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (lambda m: m["data"]["currency"].pop("code"), "body.data.currency.code"),
            (lambda m: m["data"].update(delinquentDate="11/06/2024"), "body.data.delinquentDate"),
            (lambda m: m.update(data="AAEC"), "body.data"),
        ],
    )
    def test_a_bad_payload_names_the_field(self, session: Session, change: Any, field: str) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        message = fixture("event_delinquency_range_change.json")
        change(message)
        with client_for(session) as client:
            answer = client.post(EVENTS, json=message, headers=_key(session, institution))
        body = assert_problem(answer, 422)
        assert field in str(body["detail"])

    def test_needs_the_scope(self, session: Session) -> None:
        institution = _institution(session)
        text, _ = identity.create_api_key(
            session,
            institution_id=institution.id,
            name="payments only",
            scopes=["payments:write"],
            actor="test",
        )
        with client_for(session) as client:
            answer = client.post(
                EVENTS,
                json=fixture("event_repayment.json"),
                headers={"Authorization": f"Bearer {text}"},
            )
        assert_problem(answer, 403)


class TestReversals:
    def test_a_repayment_undone_in_fineract_is_reversed_and_its_money_owed_again(
        self, session: Session
    ) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        headers = _key(session, institution)
        with client_for(session) as client:
            paid = client.post(EVENTS, json=fixture("event_repayment.json"), headers=headers)
            assert paid.status_code == 200, paid.text
            owed_after_paying = _account(session, institution, LOAN_1).balance
            undone = client.post(
                EVENTS, json=fixture("event_adjust_transaction.json"), headers=headers
            )
            assert undone.status_code == 200, undone.text
            again = fixture("event_adjust_transaction.json") | {"idempotencyKey": "again"}
            repeated = client.post(EVENTS, json=again, headers=headers)
        assert undone.json()["status"] == "applied"
        assert undone.json()["detail"] == "reversal reversed"
        assert repeated.json()["detail"] == "reversal duplicate"
        account = _account(session, institution, LOAN_1)
        assert account.balance == owed_after_paying + 500_00
        payment = session.scalars(
            select(Payment).where(Payment.external_id == "fineract:txn:31")
        ).one()
        assert payment.reversed_at is not None
        assert payment.reversed_at.date().isoformat() in {"2024-07-28", "2024-07-29"}
        assert payment.reversal_reason == "repayment 31 undone in Fineract"

    def test_an_adjusted_repayment_is_reversed_and_its_replacement_recorded(
        self, session: Session
    ) -> None:
        institution = _institution(session)
        _import(session, institution, fixture("loan_delinquent.json"))
        headers = _key(session, institution)
        message = fixture("event_adjust_transaction.json")
        replacement = dict(message["data"]["transactionToAdjust"])
        replacement.update(id=32, amount=450.0, manuallyReversed=False, reversed=False)
        replacement.pop("reversedOnDate")
        message["data"]["newTransactionDetail"] = replacement
        with client_for(session) as client:
            client.post(EVENTS, json=fixture("event_repayment.json"), headers=headers)
            adjusted = client.post(EVENTS, json=message, headers=headers)
        assert adjusted.status_code == 200, adjusted.text
        assert adjusted.json()["detail"] == "reversal reversed; replacement applied"
        rows = session.execute(
            select(Payment.external_id, Payment.amount, Payment.reversed_at).where(
                Payment.external_id.in_(["fineract:txn:31", "fineract:txn:32"])
            )
        ).all()
        assert sorted(
            (external_id, amount, at is not None) for external_id, amount, at in rows
        ) == [
            ("fineract:txn:31", 500_00, True),
            ("fineract:txn:32", 450_00, False),
        ]

    def test_a_loan_imported_again_with_a_repayment_reversed_reverses_its_payment(
        self, session: Session
    ) -> None:
        institution = _institution(session)
        loan = fixture("loan_delinquent.json")
        _import(session, institution, loan)
        later = json.loads(json.dumps(loan))
        (repayment,) = [item for item in later["transactions"] if item["id"] == 12]
        repayment["manuallyReversed"] = True
        repayment["reversedOnDate"] = [2024, 7, 10]
        done = _import(session, institution, later)
        # Transaction 13 was reversed before Recoup saw it: nothing to undo.
        assert done.reversals == {"reversed": 1, "not_recorded": 1}
        payment = session.scalars(
            select(Payment).where(Payment.external_id == "fineract:txn:12")
        ).one()
        assert payment.reversed_at is not None
        again = _import(session, institution, later)
        assert again.reversals == {"duplicate": 1, "not_recorded": 1}
