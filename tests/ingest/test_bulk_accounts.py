"""Account imports written set-based: outcomes, kept statuses and events across chunks."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from recoup.ingest.runner import ImportSummary
from recoup.models import Account, DelinquencyEvent, Institution
from tests.ingest.conftest import DEBTORS_HEADER, load, write

HEADER = "external_id,debtor_external_id,product,principal,interest,days_past_due,status"


def outcome(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.inserted, summary.updated, summary.unchanged, summary.rejected


def events(session: Session, institution: Institution) -> list[tuple[str, str, str, int]]:
    statement = (
        select(
            Account.external_id,
            DelinquencyEvent.bucket,
            DelinquencyEvent.status,
            DelinquencyEvent.balance,
        )
        .join(Account, Account.id == DelinquencyEvent.account_id)
        .where(DelinquencyEvent.institution_id == institution.id)
        .order_by(DelinquencyEvent.id)
    )
    return [tuple(row) for row in session.execute(statement)]  # type: ignore[misc]


def stored(session: Session, institution: Institution) -> dict[str, tuple[object, ...]]:
    statement = select(
        Account.external_id,
        Account.principal,
        Account.days_past_due,
        Account.bucket,
        Account.status,
    ).where(Account.institution_id == institution.id)
    return {row[0]: tuple(row[1:]) for row in session.execute(statement)}


class TestChunkedAccountImport:
    def test_new_changed_unchanged_unknown_and_kept_status_across_chunks(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        debtors = "".join(f"D{number},张伟,,,\n" for number in (1, 2, 3))
        load(
            session,
            institution,
            "debtors",
            write(tmp_path, "d.csv", DEBTORS_HEADER + "\n" + debtors),
        )
        first = write(
            tmp_path,
            "a1.csv",
            f"{HEADER}\n"
            "A1,D1,credit_card,100.00,0,0,\n"
            "A2,D2,credit_card,200.00,1.50,20,delinquent\n"
            "A3,D3,cash_loan,300.00,0,45,\n"
            "A4,D9,cash_loan,400.00,0,5,\n"
            "A5,D1,consumer_loan,500.00,0,10,\n",
        )
        summary = load(session, institution, "accounts", first, chunk_size=2)
        assert outcome(summary) == (4, 0, 0, 1)
        assert dict(summary.reject_counts) == {"unknown_debtor": 1}
        assert events(session, institution) == [
            ("A1", "M0", "current", 10000),
            ("A2", "M1", "delinquent", 20150),
            ("A3", "M2", "delinquent", 30000),
            ("A5", "M1", "delinquent", 50000),
        ]
        session.execute(text("UPDATE accounts SET status = 'legal' WHERE external_id = 'A5'"))

        second = write(
            tmp_path,
            "a2.csv",
            f"{HEADER}\n"
            "A1,D1,credit_card,100.00,0,0,\n"  # unchanged
            "A2,D2,credit_card,250.00,1.50,20,delinquent\n"  # amount only: no event
            "A3,D3,cash_loan,300.00,0,70,\n"  # bucket M2 -> M3: event
            "A4,D9,cash_loan,400.00,0,5,\n"  # still no such debtor
            "A5,D1,consumer_loan,500.00,0,12,\n"  # blank status keeps 'legal'
            "A6,D2,auto_loan,600.00,0,0,current\n",  # new
        )
        summary = load(session, institution, "accounts", second, chunk_size=2)
        assert outcome(summary) == (1, 3, 1, 1)
        assert stored(session, institution) == {
            "A1": (10000, 0, "M0", "current"),
            "A2": (25000, 20, "M1", "delinquent"),
            "A3": (30000, 70, "M3", "delinquent"),
            "A5": (50000, 12, "M1", "legal"),
            "A6": (60000, 0, "M0", "current"),
        }
        assert events(session, institution)[4:] == [
            ("A3", "M3", "delinquent", 30000),
            ("A6", "M0", "current", 60000),
        ]

        again = load(session, institution, "accounts", second, chunk_size=4)
        assert outcome(again) == (0, 0, 5, 1)
        assert len(events(session, institution)) == 6

    def test_status_given_in_the_file_replaces_a_status_set_inside_recoup(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load(
            session,
            institution,
            "debtors",
            write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n"),
        )
        path = write(tmp_path, "a.csv", f"{HEADER}\nA1,D1,cash_loan,10.00,0,10,\n")
        load(session, institution, "accounts", path)
        session.execute(text("UPDATE accounts SET status = 'promised' WHERE external_id = 'A1'"))
        path = write(tmp_path, "a.csv", f"{HEADER}\nA1,D1,cash_loan,10.00,0,10,delinquent\n")
        summary = load(session, institution, "accounts", path)
        assert outcome(summary) == (0, 1, 0, 0)
        assert stored(session, institution)["A1"][3] == "delinquent"
        assert events(session, institution)[-1][:3] == ("A1", "M1", "delinquent")
        assert len(events(session, institution)) == 2


class TestSqliteConnection:
    def test_foreign_keys_stay_enforced_and_the_connection_is_left_as_found(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load(
            session,
            institution,
            "debtors",
            write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n"),
        )
        path = write(tmp_path, "a.csv", f"{HEADER}\nA1,D1,cash_loan,10.00,0,10,\nA2,D7,x,1,0,0,\n")
        summary = load(session, institution, "accounts", path)
        assert outcome(summary) == (1, 0, 0, 1)
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            assert connection.dialect.name == "postgresql"
            return
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        staged = connection.exec_driver_sql("SELECT count(*) FROM temp.import_account_stage")
        assert staged.scalar_one() == 0
        total = session.execute(select(func.count()).select_from(Account)).scalar_one()
        assert total == 1
