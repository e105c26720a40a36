"""Reading and checking a file in a second process gives exactly the in-process outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.enums import ImportKind
from recoup.ingest.pipeline import _pack, _record_type, _unpack
from recoup.ingest.readers import UnusableFile
from recoup.ingest.rules import (
    AccountRecord,
    ContactRecord,
    DebtorRecord,
    PaymentRecord,
    Problem,
)
from recoup.ingest.service import CheckedChunk
from recoup.models import Account, DelinquencyEvent, Institution
from recoup.models.debtor import Debtor
from recoup.models.ingest import ImportRun
from tests.factories import make_institution
from tests.ingest.conftest import DEBTORS_HEADER, load, write

ACCOUNTS = (
    "external_id,debtor_external_id,product,currency,credit_limit,principal,interest,fees,"
    "penalty,minimum_due,overdue_amount,due_date,days_past_due,status,opened_on,charged_off_on"
)


def mixed_accounts(rows: int) -> str:
    """Return an accounts file of clean rows with every few rows something wrong."""
    lines = [ACCOUNTS]
    for index in range(rows):
        days = (0, 5, 35, 95)[index % 4]
        status = "delinquent" if days else "current"
        line = (
            f"A{index},D{index % 5},credit_card,CNY,100.00,{index}.5,1.25,0,0,0,0,"
            f"2025-01-0{1 + index % 9},{days},{status},2024-01-01,"
        )
        if index % 11 == 3:
            line = line.replace(f",{index}.5,", ',"12,34",')
        if index % 13 == 4:
            line = line.replace(f",D{index % 5},", ",D404,")
        if index % 17 == 5:
            line = line.replace(status, "current" if days else "delinquent", 1)
        lines.append(line)
    lines.append("A7,D1,credit_card,CNY,,1.00,0,0,0,0,0,,0,,,")  # a duplicate id
    lines.append("A999,D1")  # too few fields
    return "\n".join(lines) + "\n"


def accounts_of(session: Session, institution: Institution) -> list[tuple[object, ...]]:
    columns = [column for column in Account.__table__.c if column.name not in ("id",)]  # type: ignore[attr-defined]
    skip = {"institution_id", "debtor_id", "created_at", "updated_at"}
    shown = [column for column in columns if column.name not in skip]
    statement = (
        select(*shown).where(Account.institution_id == institution.id).order_by(Account.external_id)
    )
    return [tuple(row) for row in session.execute(statement)]


def events_of(session: Session, institution: Institution) -> list[tuple[object, ...]]:
    statement = (
        select(
            Account.external_id,
            DelinquencyEvent.bucket,
            DelinquencyEvent.status,
            DelinquencyEvent.balance,
            DelinquencyEvent.days_past_due,
        )
        .join(Account, Account.id == DelinquencyEvent.account_id)
        .where(DelinquencyEvent.institution_id == institution.id)
        .order_by(DelinquencyEvent.id)
    )
    return [tuple(row) for row in session.execute(statement)]


class TestSameOutcome:
    def test_summary_rows_events_and_reject_report_match_the_in_process_import(
        self, session: Session, tmp_path: Path
    ) -> None:
        debtors = write(
            tmp_path, "d.csv", DEBTORS_HEADER + "\n" + "".join(f"D{i},张伟,,,\n" for i in range(5))
        )
        outcomes = []
        for pipeline in (False, True):
            institution = make_institution(session)
            load(session, institution, "debtors", debtors)
            folder = tmp_path / str(pipeline)
            folder.mkdir()
            first = write(folder, "a.csv", mixed_accounts(60))
            second = write(folder, "b.csv", mixed_accounts(80).replace(",1.25,", ",2.50,"))
            summaries = [
                load(session, institution, "accounts", path, chunk_size=7, pipeline=pipeline)
                for path in (first, second, first)
            ]
            outcomes.append(
                (
                    [
                        (
                            summary.rows_read,
                            summary.inserted,
                            summary.updated,
                            summary.unchanged,
                            summary.rejected,
                            dict(summary.reject_counts),
                            summary.reject_report.read_text(encoding="utf-8-sig")
                            if summary.reject_report
                            else None,
                        )
                        for summary in summaries
                    ],
                    accounts_of(session, institution),
                    events_of(session, institution),
                )
            )
        in_process, pipelined = outcomes
        assert pipelined == in_process
        first_run = in_process[0][0]
        assert first_run[1] > 0
        assert {"bad_amount", "unknown_debtor", "inconsistent", "duplicate_in_file"} <= set(
            first_run[5]
        )
        assert in_process[0][1][1] > 0  # the second file updated rows

    def test_json_lines_report_the_columns_they_ignored(
        self, session: Session, tmp_path: Path
    ) -> None:
        institution = make_institution(session)
        lines = [
            '{"external_id": "D1", "name": "张伟", "extra": 1}',
            '{"external_id": "D2", "name": "李娜", "later": "x"}',
        ]
        path = write(tmp_path, "d.jsonl", "\n".join(lines))
        summary = load(session, institution, "debtors", path, pipeline=True)
        assert summary.inserted == 2
        assert summary.ignored_columns == ["extra", "later"]


class TestReaderProcess:
    def test_the_main_module_is_left_as_it_was(self, session: Session, tmp_path: Path) -> None:
        main = sys.modules["__main__"]
        before = (getattr(main, "__file__", None), getattr(main, "__spec__", None))
        institution = make_institution(session)
        load(
            session,
            institution,
            "debtors",
            write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n"),
        )
        path = write(tmp_path, "a.csv", mixed_accounts(12))
        summary = load(session, institution, "accounts", path, pipeline=True)
        assert summary.rows_read == 14
        assert (getattr(main, "__file__", None), getattr(main, "__spec__", None)) == before


# A writing process that starts a reader, takes one chunk and then hangs, as if stopped
# mid-import; it prints the reader's and the resource tracker's process ids.
HANGING_WRITER = textwrap.dedent(
    """
    import multiprocessing, sys, time
    from datetime import UTC, datetime
    from multiprocessing import resource_tracker
    from pathlib import Path
    from recoup.ingest.pipeline import checked_chunks
    from recoup.ingest.rules import RowContext
    from recoup.enums import ImportKind

    chunks = checked_chunks(
        path=Path(sys.argv[1]),
        kind=ImportKind.debtors,
        file_format=None,
        encoding=None,
        context=RowContext("CN", "CNY", "Asia/Shanghai", datetime.now(UTC)),
        chunk_size=50,
        ignored_columns=[],
    )
    next(chunks)
    (reader,) = multiprocessing.active_children()
    print(reader.pid, resource_tracker._resource_tracker._pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (an unreaped zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
class TestWriterKilled:
    def test_the_reader_and_its_resource_tracker_exit_when_the_writer_is_killed(
        self, tmp_path: Path
    ) -> None:
        rows = "".join(f"D{i},张伟,,,\n" for i in range(5_000))
        path = write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\n{rows}")
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        writer = subprocess.Popen(
            [sys.executable, "-c", HANGING_WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        try:
            assert writer.stdout is not None
            reader_pid, tracker_pid = (int(pid) for pid in writer.stdout.readline().split())
            assert not _gone(reader_pid)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (_gone(reader_pid) and _gone(tracker_pid)):
            time.sleep(0.1)
        still_running = [pid for pid in (reader_pid, tracker_pid) if not _gone(pid)]
        for pid in still_running:
            os.kill(pid, signal.SIGKILL)
        assert still_running == [], "the reader or its resource tracker outlived the writer"


class TestFileBreakingPartWay:
    def test_rows_before_the_break_are_committed_and_the_run_says_so(
        self, session: Session, tmp_path: Path
    ) -> None:
        institution = make_institution(session)
        rows = "".join(f"D{i},张伟,,,\n" for i in range(5))
        huge = '"' + "x" * (17 * 2**20) + '"'
        path = write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\n{rows}D9,{huge},,,\n")
        with pytest.raises(UnusableFile, match="The 4 rows before it were committed"):
            load(session, institution, "debtors", path, chunk_size=2, pipeline=True)
        stored = (
            select(func.count()).select_from(Debtor).where(Debtor.institution_id == institution.id)
        )
        assert session.execute(stored).scalar_one() == 4
        run = session.execute(
            select(ImportRun).where(ImportRun.institution_id == institution.id)
        ).scalar_one()
        assert (run.status, run.rows_read) == ("failed", 4)
        assert run.message is not None
        assert "cannot be read as CSV" in run.message


class TestPacking:
    @pytest.mark.parametrize(
        "record",
        [
            DebtorRecord(
                "D1", "individual", "张伟", None, None, date(1990, 1, 2), "北京市", None, None,
                "Asia/Shanghai", "zh-CN", None, {"deceased": False},
            ),
            ContactRecord(
                "C1", "D1", "mobile", "+8613812345678", "self", False, None, "valid", "crm",
                None, datetime(2025, 1, 1, tzinfo=UTC), {"opt_out_sms": True}, None, None,
            ),
            AccountRecord(
                "A1", "D1", "credit_card", "CNY", None, 100, 1, 0, 0, 0, 0, None, 5, "M1",
                "delinquent", date(2024, 1, 1), None, status_given=False,
            ),
            PaymentRecord("P1", "A1", 100, None, datetime(2025, 1, 1, tzinfo=UTC), "card"),
        ],
    )  # fmt: skip
    def test_records_and_problems_survive_the_trip(self, record: object) -> None:
        kind = {
            DebtorRecord: ImportKind.debtors,
            ContactRecord: ImportKind.contacts,
            AccountRecord: ImportKind.accounts,
            PaymentRecord: ImportKind.payments,
        }[type(record)]
        chunk = CheckedChunk(
            rows_read=3,
            records=[(2, record)],  # type: ignore[list-item]
            problems=[(3, Problem("principal", "12,34", "bad_amount", "not an amount"))],
        )
        assert _unpack(_pack(chunk), _record_type(kind)) == chunk

    def test_account_rows_travel_as_tuples(self) -> None:
        values = ("A1", "D1", "credit_card", "CNY", None, 100, 1, 0, 0, 0, 0, None, 5, "M1")
        row = (2, *values, "delinquent", date(2024, 1, 1), None, False, None, None, None)
        chunk = CheckedChunk(rows_read=2, records=[], problems=[], account_rows=[row])
        assert _unpack(_pack(chunk), _record_type(ImportKind.accounts)) == chunk
