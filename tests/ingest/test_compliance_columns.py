"""The optional compliance columns of debtor and account imports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.ingest.rules import AccountRecord, Problem, RowContext, validate_account
from recoup.models import Account, Debtor, Institution
from tests.ingest.conftest import load, write

CONTEXT = RowContext(
    region="US",
    currency="USD",
    timezone="America/New_York",
    now=datetime(2025, 11, 28, 16, 0, tzinfo=UTC),
)
ROW = {
    "external_id": "A1",
    "debtor_external_id": "D1",
    "product": "credit_card",
    "principal": "100.00",
    "days_past_due": "40",
}


def test_account_dates_are_parsed() -> None:
    record = validate_account(
        {
            **ROW,
            "initial_communication_on": "2025-09-15",
            "validation_notice_sent_on": "2025-09-16",
            "time_barred_on": "2031-09-10",
        },
        CONTEXT,
    )
    assert isinstance(record, AccountRecord)
    assert record.initial_communication_on == date(2025, 9, 15)
    assert record.validation_notice_sent_on == date(2025, 9, 16)
    assert record.time_barred_on == date(2031, 9, 10)
    plain = validate_account(ROW, CONTEXT)
    assert isinstance(plain, AccountRecord)
    assert (plain.initial_communication_on, plain.time_barred_on) == (None, None)


def test_account_dates_are_checked_naming_the_column() -> None:
    problems = validate_account(
        {
            **ROW,
            "initial_communication_on": "2025-12-01",
            "validation_notice_sent_on": "15/09/2025",
        },
        CONTEXT,
    )
    assert isinstance(problems, list)
    assert {(p.field, p.code) for p in problems if isinstance(p, Problem)} == {
        ("initial_communication_on", "future_date"),
        ("validation_notice_sent_on", "bad_date"),
    }
    backwards = validate_account(
        {
            **ROW,
            "initial_communication_on": "2025-09-15",
            "validation_notice_sent_on": "2025-09-14",
        },
        CONTEXT,
    )
    assert isinstance(backwards, list)
    assert [(p.field, p.code) for p in backwards] == [
        ("validation_notice_sent_on", "impossible_date")
    ]


def test_work_contact_forbidden_is_imported_for_a_new_debtor(
    session: Session, institution: Institution, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "debtors.csv",
        "external_id,name,work_contact_forbidden\nDW1,张伟,true\nDW2,李娜,\n",
    )
    summary = load(session, institution, "debtors", path)
    assert (summary.inserted, summary.rejected) == (2, 0)
    flags = dict(
        session.execute(
            select(Debtor.external_id, Debtor.work_contact_forbidden).where(
                Debtor.institution_id == institution.id
            )
        ).all()
    )
    assert flags == {"DW1": True, "DW2": False}


def test_work_contact_forbidden_updates_a_known_debtor(
    session: Session, institution: Institution, tmp_path: Path
) -> None:
    header = "external_id,name,work_contact_forbidden\n"
    load(session, institution, "debtors", write(tmp_path, "a.csv", header + "DW3,王芳,\n"))
    summary = load(
        session, institution, "debtors", write(tmp_path, "b.csv", header + "DW3,王芳,1\n")
    )
    assert (summary.updated, summary.unchanged) == (1, 0)
    stored = session.scalar(
        select(Debtor.work_contact_forbidden).where(
            Debtor.institution_id == institution.id, Debtor.external_id == "DW3"
        )
    )
    assert stored is True


def test_account_dates_are_stored_and_a_blank_keeps_the_stored_date(
    session: Session, institution: Institution, tmp_path: Path
) -> None:
    load(session, institution, "debtors", write(tmp_path, "d.csv", "external_id,name\nDF1,张伟\n"))
    header = (
        "external_id,debtor_external_id,product,principal,days_past_due,"
        "initial_communication_on,validation_notice_sent_on,time_barred_on\n"
    )

    def stored() -> tuple[date | None, date | None, date | None]:
        row = session.execute(
            select(
                Account.initial_communication_on,
                Account.validation_notice_sent_on,
                Account.time_barred_on,
            ).where(Account.institution_id == institution.id, Account.external_id == "AF1")
        ).one()
        return row[0], row[1], row[2]

    first = load(
        session,
        institution,
        "accounts",
        write(tmp_path, "a1.csv", header + "AF1,DF1,credit_card,100.00,40,2025-09-15,,\n"),
    )
    assert (first.inserted, first.rejected) == (1, 0)
    assert stored() == (date(2025, 9, 15), None, None)
    second = load(
        session,
        institution,
        "accounts",
        write(
            tmp_path,
            "a2.csv",
            header + "AF1,DF1,credit_card,100.00,40,,2025-09-16,2031-09-10\n",
        ),
    )
    assert (second.updated, second.rejected) == (1, 0)
    assert stored() == (date(2025, 9, 15), date(2025, 9, 16), date(2031, 9, 10))
    again = load(
        session,
        institution,
        "accounts",
        write(tmp_path, "a3.csv", header + "AF1,DF1,credit_card,100.00,40,,,\n"),
    )
    assert (again.unchanged, again.updated) == (1, 0)
    assert stored() == (date(2025, 9, 15), date(2025, 9, 16), date(2031, 9, 10))
