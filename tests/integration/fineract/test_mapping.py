"""Fineract payloads (recorded in the shapes Fineract documents) → Recoup rows, pure."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from recoup.enums import Product
from recoup.integration import fineract
from recoup.integration.fineract import FineractMapError

HERE = Path(__file__).parent
TODAY = date(2024, 7, 16)
ZONE = "Asia/Shanghai"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / name).read_text(encoding="utf-8"))
    return data


class TestLoan:
    def test_a_delinquent_loan(self) -> None:
        mapped = fineract.map_loan(fixture("loan_delinquent.json"), today=TODAY, timezone=ZONE)
        assert mapped.loan_id == 1
        assert mapped.debtor == {
            "external_id": "fineract:client:1",
            "name": "Wang Fang",
            "kind": "individual",
        }
        assert mapped.account == {
            "external_id": "95174ff9-1a75-4d72-a413-6f9b1cb988b7",
            "debtor_external_id": "fineract:client:1",
            "product": "consumer_loan",
            "currency": "USD",
            "principal": "8000.00",
            "interest": "420.50",
            "fees": "30.00",
            "penalty": "15.00",
            "overdue_amount": "1250.00",
            "days_past_due": 35,
            "due_date": "2024-08-01",
            "opened_on": "2024-01-01",
        }

    def test_only_repayments_not_reversed_become_payments(self) -> None:
        mapped = fineract.map_loan(fixture("loan_delinquent.json"), today=TODAY, timezone=ZONE)
        assert mapped.payments == [
            {
                "external_id": "fineract:txn:12",
                "account_external_id": "95174ff9-1a75-4d72-a413-6f9b1cb988b7",
                "amount": "900.00",
                "currency": "USD",
                "paid_at": "2024-05-01T00:00:00+08:00",
                "channel": "bank_transfer",
            }
        ]

    def test_reversed_repayments_become_reversals_of_their_payments(self) -> None:
        mapped = fineract.map_loan(fixture("loan_delinquent.json"), today=TODAY, timezone=ZONE)
        # Fineract does not say when it was reversed: today, at the start of the day.
        assert mapped.reversals == [
            {
                "external_id": "fineract:txn:13",
                "reversed_at": "2024-07-16T00:00:00+08:00",
                "reason": "repayment 13 reversed in Fineract",
            }
        ]

    def test_an_adjustment_reverses_the_repayment_and_records_its_replacement(self) -> None:
        data = fixture("event_adjust_transaction.json")["data"]
        reversal, payment = fineract.map_adjustment(data, timezone=ZONE, today=TODAY)
        assert reversal == {
            "external_id": "fineract:txn:31",
            "reversed_at": "2024-07-29T00:00:00+08:00",
            "reason": "repayment 31 undone in Fineract",
        }
        assert payment is None
        replacement = dict(data["transactionToAdjust"], id=32, manuallyReversed=False)
        replacement.pop("reversed")
        replacement.pop("reversedOnDate")
        reversal, payment = fineract.map_adjustment(
            {**data, "newTransactionDetail": replacement}, timezone=ZONE, today=TODAY
        )
        assert reversal is not None
        assert reversal["reason"] == (
            "repayment 31 adjusted in Fineract (replaced by transaction 32)"
        )
        assert payment is not None
        assert payment["external_id"] == "fineract:txn:32"
        assert fineract.map_transaction(data["transactionToAdjust"], timezone=ZONE) is None

    def test_an_adjustment_of_something_else_is_no_reversal(self) -> None:
        data = fixture("event_adjust_transaction.json")["data"]
        accrual = dict(data["transactionToAdjust"], type={"code": "loanTransactionType.accrual"})
        assert fineract.map_adjustment(
            {"transactionToAdjust": accrual}, timezone=ZONE, today=TODAY
        ) == (None, None)
        with pytest.raises(FineractMapError, match="transactionToAdjust"):
            fineract.map_adjustment({}, timezone=ZONE, today=TODAY)

    def test_a_closed_loan_keyed_by_its_id(self) -> None:
        mapped = fineract.map_loan(fixture("loan_closed.json"), today=TODAY, timezone=ZONE)
        assert mapped.account["external_id"] == "fineract:loan:2"
        assert mapped.account["status"] == "closed"
        assert mapped.account["days_past_due"] == 0
        assert mapped.account["overdue_amount"] == "0.00"
        assert mapped.debtor["external_id"] == "CRM-0002"
        assert [(p["external_id"], p["channel"]) for p in mapped.payments] == [
            ("REPAY-0040", "cash")
        ]

    def test_written_off(self) -> None:
        loan = fixture("loan_closed.json")
        loan["status"] = {"closedWrittenOff": True, "closed": True}
        loan["timeline"]["writeOffOnDate"] = [2024, 2, 1]
        mapped = fineract.map_loan(loan, today=TODAY, timezone=ZONE, product=Product.cash_loan)
        assert mapped.account["status"] == "charged_off"
        assert mapped.account["charged_off_on"] == "2024-02-01"
        assert mapped.account["product"] == "cash_loan"

    def test_days_from_overdue_since_without_a_delinquent_block(self) -> None:
        loan = fixture("loan_delinquent.json")
        del loan["delinquent"]
        mapped = fineract.map_loan(loan, today=TODAY, timezone=ZONE)
        assert mapped.account["days_past_due"] == 35  # 2024-06-11 → 2024-07-16
        assert mapped.account["overdue_amount"] == "1250.00"  # summary.totalOverdue

    def test_an_avro_loan_with_iso_dates(self) -> None:
        data = fixture("event_loan_account.json")["data"]
        mapped = fineract.map_loan(data, today=TODAY, timezone=ZONE)
        assert mapped.account["external_id"] == "LN-4"
        assert mapped.account["opened_on"] == "2024-02-01"
        assert mapped.account["days_past_due"] == 25
        assert mapped.payments == []

    @pytest.mark.parametrize(
        ("change", "field", "words"),
        [
            (lambda loan: loan.pop("id"), "id", "missing"),
            (lambda loan: loan["currency"].pop("code"), "currency.code", "ISO 4217"),
            (lambda loan: loan["currency"].update(code="usd"), "currency.code", "ISO 4217"),
            (
                lambda loan: loan["summary"].update(principalOutstanding="12,50"),
                "summary.principalOutstanding",
                "not an amount",
            ),
            (
                lambda loan: loan["summary"].update(interestOutstanding=1.005),
                "summary.interestOutstanding",
                "2 decimal places",
            ),
            (
                lambda loan: loan["summary"].update(feeChargesOutstanding=-1),
                "summary.feeChargesOutstanding",
                "negative",
            ),
            (lambda loan: loan.pop("summary"), "summary", "missing"),
            (
                lambda loan: loan["summary"].update(principalOutstanding=1e30),
                "summary.principalOutstanding",
                "below 10^13",
            ),
            (
                lambda loan: loan["timeline"].update(actualDisbursementDate=[10**20, 1, 1]),
                "timeline.actualDisbursementDate",
                "not a date",
            ),
            (
                lambda loan: loan["delinquent"].update(nextPaymentDueDate="01 August 2024"),
                "delinquent.nextPaymentDueDate",
                "dateFormat",
            ),
            (
                lambda loan: loan.update(
                    status={"code": "loanStatusType.submitted.and.pending.approval"}
                ),
                "status",
                "pending.approval",
            ),
            (lambda loan: loan.pop("clientName"), "clientName", "name"),
            (lambda loan: loan.update(externalId="has space"), "externalId", "external id"),
            (
                lambda loan: loan["transactions"][1].pop("date"),
                "transactions[1].date",
                "missing",
            ),
        ],
    )
    def test_errors_name_the_field(self, change: Any, field: str, words: str) -> None:
        loan = copy.deepcopy(fixture("loan_delinquent.json"))
        change(loan)
        with pytest.raises(FineractMapError) as raised:
            fineract.map_loan(loan, today=TODAY, timezone=ZONE)
        assert raised.value.field == field
        assert words in raised.value.message


class TestClient:
    def test_a_client(self) -> None:
        client = {"id": 9, "externalId": None, "firstname": "Fang", "lastname": "Wang"}
        assert fineract.map_client(client) == {
            "external_id": "fineract:client:9",
            "name": "Fang Wang",
            "kind": "individual",
        }

    def test_an_entity(self) -> None:
        client = {
            "id": 9,
            "externalId": "CRM-9",
            "displayName": "Acme Ltd",
            "legalForm": {"id": 2, "code": "legalFormType.entity"},
        }
        assert fineract.map_client(client)["kind"] == "business"

    def test_no_name(self) -> None:
        with pytest.raises(FineractMapError, match="displayName"):
            fineract.map_client({"id": 9})


class TestEvents:
    def test_the_envelope(self) -> None:
        event = fineract.parse_event(fixture("event_delinquency_range_change.json"))
        assert event.key == "4b7c1f0e-3c1d-4c55-9a4a-0f6f1c2d9e21"
        assert event.type == "LoanDelinquencyRangeChangeBusinessEvent"
        assert event.schema == fineract.DELINQUENCY_SCHEMA
        assert event.business_date == date(2024, 7, 26)

    def test_the_key_without_an_idempotency_key(self) -> None:
        message = fixture("event_repayment.json")
        del message["idempotencyKey"]
        assert fineract.parse_event(message).key == "fineract-prod:122"

    def test_data_must_be_json(self) -> None:
        message = fixture("event_repayment.json")
        message["data"] = "T2JqAQ=="
        with pytest.raises(FineractMapError) as raised:
            fineract.parse_event(message)
        assert raised.value.field == "data"

    def test_a_delinquency_change(self) -> None:
        event = fineract.parse_event(fixture("event_delinquency_range_change.json"))
        change = fineract.map_delinquency(event.data, business_date=date(2024, 7, 26))
        assert change == fineract.Delinquency(
            "95174ff9-1a75-4d72-a413-6f9b1cb988b7", 45, "1600.00", "USD", "RANGE_45"
        )

    def test_cured(self) -> None:
        data = fixture("event_delinquency_range_change.json")["data"]
        data["delinquentDate"] = None
        data["delinquencyRange"] = None
        change = fineract.map_delinquency(data, business_date=date(2024, 7, 26))
        assert (change.days_past_due, change.overdue_amount) == (0, "0.00")

    def test_a_repayment(self) -> None:
        data = fixture("event_repayment.json")["data"]
        assert fineract.map_transaction(data, timezone=ZONE) == {
            "external_id": "fineract:txn:31",
            "account_external_id": "95174ff9-1a75-4d72-a413-6f9b1cb988b7",
            "amount": "500.00",
            "currency": "USD",
            "paid_at": "2024-07-26T00:00:00+08:00",
            "channel": "cash",
        }

    def test_not_a_repayment(self) -> None:
        data = fixture("event_repayment.json")["data"]
        data["type"] = {"code": "loanTransactionType.accrual", "repayment": False, "accrual": True}
        assert fineract.map_transaction(data, timezone=ZONE) is None

    def test_a_repayment_of_nothing(self) -> None:
        data = fixture("event_repayment.json")["data"]
        data["amount"] = 0
        with pytest.raises(FineractMapError) as raised:
            fineract.map_transaction(data, timezone=ZONE)
        assert raised.value.field == "amount"


class TestDump:
    def test_a_page_or_a_list(self) -> None:
        page = fixture("loans_page.json")
        assert [loan["id"] for loan in fineract.loans_of_dump(page)] == [1, 2, 3]
        assert len(fineract.loans_of_dump(page["pageItems"])) == 3
        assert len(fineract.loans_of_dump(fixture("loan_closed.json"))) == 1

    def test_not_loans(self) -> None:
        with pytest.raises(FineractMapError, match="pageItems"):
            fineract.loans_of_dump({"totalFilteredRecords": 0})
