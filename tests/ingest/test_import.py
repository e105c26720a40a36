"""Importing files into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from recoup.ingest.readers import UnusableFile
from recoup.ingest.service import data_quality_report
from recoup.kit.clock import utcnow
from recoup.kit.crypto import blind_index
from recoup.models import Account, ContactPoint, Debtor, DelinquencyEvent, Institution, Payment
from recoup.models.ingest import ImportReject, ImportRun
from tests.factories import make_institution
from tests.ingest.conftest import (
    ACCOUNTS_HEADER,
    DEBTORS_HEADER,
    load,
    load_examples,
    running_import,
    write,
)


def count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def report_rows(path: Path | None) -> list[dict[str, str]]:
    assert path is not None
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


class TestExamples:
    def test_documented_examples_import_cleanly_in_order(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        summaries = load_examples(session, institution, tmp_path)
        assert {kind: s.rejected for kind, s in summaries.items()} == dict.fromkeys(summaries, 0)
        assert {kind: s.inserted for kind, s in summaries.items()} == {
            "debtors": 8,
            "contacts": 15,
            "accounts": 9,
            "payments": 7,
        }
        assert not list(tmp_path.glob("*.rejects.csv"))
        assert count(session, Payment) == 7
        debtor = session.execute(select(Debtor).where(Debtor.external_id == "D0001")).scalar_one()
        assert debtor.name == "张伟"
        assert debtor.national_id == "110101198803140212"

    def test_reimporting_changes_nothing(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load_examples(session, institution, tmp_path)
        events = count(session, DelinquencyEvent)
        for kind in ("debtors", "contacts", "payments"):
            again = load(session, institution, kind, tmp_path / f"{kind}.csv")
            assert (again.inserted, again.updated, again.rejected) == (0, 0, 0)
            assert again.unchanged == again.rows_read
        assert count(session, Payment) == 7
        assert count(session, DelinquencyEvent) == events

    def test_accounts_reimported_twice_are_unchanged(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load_examples(session, institution, tmp_path)
        first = load(session, institution, "accounts", tmp_path / "accounts.csv")
        second = load(session, institution, "accounts", tmp_path / "accounts.csv")
        assert first.rows_read == 9
        assert (second.inserted, second.updated, second.unchanged) == (0, 0, 9)


class TestUpserts:
    def test_changed_rows_are_updated_and_bucket_changes_recorded(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,110101198803140212,北京市,北京市\n")
        load(session, institution, "debtors", tmp_path / "d.csv")
        path = write(tmp_path, "a.csv", f"{ACCOUNTS_HEADER}\nA1,D1,credit_card,1000.00,10.00,20\n")
        assert load(session, institution, "accounts", path).inserted == 1
        write(tmp_path, "a.csv", f"{ACCOUNTS_HEADER}\nA1,D1,credit_card,1000.00,10.00,45\n")
        summary = load(session, institution, "accounts", path)
        assert (summary.inserted, summary.updated) == (0, 1)
        account = session.execute(select(Account)).scalar_one()
        session.refresh(account)
        assert (account.bucket, account.days_past_due) == ("M2", 45)
        buckets = (
            session.execute(select(DelinquencyEvent.bucket).order_by(DelinquencyEvent.id))
            .scalars()
            .all()
        )
        assert list(buckets) == ["M1", "M2"]
        write(tmp_path, "a.csv", f"{ACCOUNTS_HEADER}\nA1,D1,credit_card,900.00,10.00,45\n")
        assert load(session, institution, "accounts", path).updated == 1
        assert count(session, DelinquencyEvent) == 2

    def test_blank_status_keeps_a_status_set_inside_recoup(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n")
        load(session, institution, "debtors", tmp_path / "d.csv")
        path = write(tmp_path, "a.csv", f"{ACCOUNTS_HEADER}\nA1,D1,consumer_loan,500,0,10\n")
        load(session, institution, "accounts", path)
        account = session.execute(select(Account)).scalar_one()
        account.status = "promised"
        session.flush()
        write(tmp_path, "a.csv", f"{ACCOUNTS_HEADER}\nA1,D1,consumer_loan,500,0,12\n")
        load(session, institution, "accounts", path)
        session.refresh(account)
        assert (account.status, account.days_past_due) == ("promised", 12)

    def test_contact_values_are_encrypted_with_a_blind_index(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load_examples(session, institution, tmp_path)
        contact = session.execute(
            select(ContactPoint).where(ContactPoint.external_id == "C0001")
        ).scalar_one()
        assert contact.value == "13812345678"
        stored = session.execute(
            text("SELECT value, value_index FROM contact_points WHERE external_id = 'C0001'")
        ).one()
        assert "13812345678" not in stored.value
        assert "5678" not in stored.value
        assert stored.value_index == blind_index("13812345678", context="contact_points.value")


class TestReferences:
    def test_unknown_debtor_and_bad_payments_are_rejected_not_lost(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load_examples(session, institution, tmp_path)
        accounts = write(
            tmp_path,
            "late.csv",
            f"{ACCOUNTS_HEADER},status\nA9001,D9999,credit_card,100,0,0,current\nA9002,D0001,cash_loan,100,0,0,closed\n",
        )
        summary = load(session, institution, "accounts", accounts)
        assert summary.inserted == 1
        assert summary.reject_counts == {"unknown_debtor": 1}
        payments = write(
            tmp_path,
            "pay.csv",
            "external_id,account_external_id,amount,currency,paid_at\n"
            "P9001,A7777,10.00,CNY,2025-11-01T10:00:00+08:00\n"
            "P9002,A9002,10.00,CNY,2025-11-01T10:00:00+08:00\n"
            "P9003,A0001,10.00,USD,2025-11-01T10:00:00+08:00\n"
            "P0001,A0001,999.00,CNY,2025-10-20T14:32:00+08:00\n"
            "P9004,A0001,10.00,,2025-11-01T10:00:00+08:00\n",
        )
        summary = load(session, institution, "payments", payments)
        assert summary.reject_counts == {
            "unknown_account": 1,
            "closed_account": 1,
            "currency_mismatch": 1,
            "conflicting_duplicate": 1,
        }
        assert summary.inserted == 1
        rows = report_rows(summary.reject_report)
        assert [row["row"] for row in rows] == ["2", "3", "4", "5"]
        stored = (
            session.execute(select(ImportReject.code).order_by(ImportReject.row_number))
            .scalars()
            .all()
        )
        assert "unknown_account" in stored


class TestHostileFiles:
    """Each hostile file gives a clear reject or a file error, never a traceback or a silent partial import."""

    def test_gbk_file_is_detected(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path, "gbk.csv", f"{DEBTORS_HEADER}\nD1,张伟,,广东省,深圳市\n", encoding="gbk"
        )
        summary = load(session, institution, "debtors", path)
        assert (summary.encoding, summary.inserted) == ("gb18030", 1)
        assert session.execute(select(Debtor.province)).scalar_one() == "广东省"

    def test_gbk_file_declared_utf8_is_a_file_error(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path, "gbk.csv", f"{DEBTORS_HEADER}\nD1,张伟,,广东省,深圳市\n", encoding="gbk"
        )
        with pytest.raises(UnusableFile, match=r"not valid utf-8.*GB18030"):
            load(session, institution, "debtors", path, encoding="utf-8")
        assert count(session, Debtor) == 0
        run = session.execute(select(ImportRun)).scalar_one()
        assert run.status == "failed"

    def test_mixed_encoding_rows_are_rejected(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        content = f"{DEBTORS_HEADER}\nD1,张伟,,,\n".encode() + "D2,李娜,,,\n".encode("gbk")
        summary = load(session, institution, "debtors", write(tmp_path, "mixed.csv", content))
        assert (summary.inserted, summary.reject_counts) == (1, {"bad_encoding": 1})

    def test_random_bytes(self, session: Session, institution: Institution, tmp_path: Path) -> None:
        path = write(tmp_path, "noise.csv", bytes(range(256)) * 40)
        with pytest.raises(UnusableFile):
            load(session, institution, "debtors", path)

    def test_utf8_bom(self, session: Session, institution: Institution, tmp_path: Path) -> None:
        path = write(tmp_path, "bom.csv", "\ufeff" + f"{DEBTORS_HEADER}\nD1,张伟,,,\n")
        summary = load(session, institution, "debtors", path)
        assert (summary.encoding, summary.inserted) == ("utf-8-sig", 1)

    def test_missing_columns_are_named(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "a.csv", "external_id,product\nA1,credit_card\n")
        with pytest.raises(UnusableFile) as caught:
            load(session, institution, "accounts", path)
        assert "debtor_external_id, principal, days_past_due" in caught.value.message
        assert "docs/import-formats.md" in caught.value.message

    def test_extra_columns_are_ignored_and_reported(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "d.csv", f"{DEBTORS_HEADER},wechat_id,备注\nD1,张伟,,,,wx123,VIP\n")
        summary = load(session, institution, "debtors", path)
        assert summary.inserted == 1
        assert summary.ignored_columns == ["wechat_id", "备注"]

    def test_quoted_newlines(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path, "d.csv", f'{DEBTORS_HEADER},employer\nD1,张伟,,,,"华信\n科技"\nD2,李娜,,,,\n'
        )
        summary = load(session, institution, "debtors", path)
        assert summary.inserted == 2
        employer = session.execute(
            select(Debtor.employer).where(Debtor.external_id == "D1")
        ).scalar_one()
        assert employer == "华信 科技"

    def test_bad_amounts_future_dates_formulas_and_long_fields(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n")
        load(session, institution, "debtors", tmp_path / "d.csv")
        rows = [
            "A1,D1,credit_card,1e309,0,0",
            'A2,D1,credit_card,"12,34",0,0',
            "A3,D1,credit_card,-50,0,0",
            "A4,D1,credit_card,NaN,0,0",
            "A5,D1,credit_card,100,0,0",
            "A5,D1,credit_card,200,0,0",
            f"A6,D1,{'x' * 10_000},100,0,0",
        ]
        summary = load(
            session,
            institution,
            "accounts",
            write(tmp_path, "a.csv", ACCOUNTS_HEADER + "\n" + "\n".join(rows)),
        )
        assert summary.inserted == 1
        assert summary.reject_counts == {
            "bad_amount": 3,
            "negative_amount": 1,
            "duplicate_in_file": 1,
            "too_long": 1,
        }
        debtors = write(
            tmp_path,
            "d2.csv",
            f'{DEBTORS_HEADER},employer\nD2,"=HYPERLINK(""http://x.example"",""点我"")",,,,\nD3,李娜,,,,@SUM(A1)\n'
            f"D4,王芳,,,,{'长' * 10_000}\n",
        )
        summary = load(session, institution, "debtors", debtors)
        assert summary.reject_counts == {"formula_injection": 2, "too_long": 1}
        report = summary.reject_report
        values = [row["value"] for row in report_rows(report)]
        assert all(not value.startswith(("=", "+", "-", "@")) for value in values)
        assert max(len(value) for value in values) <= 81
        payments = write(
            tmp_path,
            "p.csv",
            "external_id,account_external_id,amount,paid_at\nP1,A5,10,2099-01-01T00:00:00+08:00\n",
        )
        assert load(session, institution, "payments", payments).reject_counts == {"future_date": 1}

    def test_empty_file_and_header_only(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        with pytest.raises(UnusableFile, match="empty"):
            load(session, institution, "debtors", write(tmp_path, "empty.csv", b""))
        summary = load(
            session, institution, "debtors", write(tmp_path, "header.csv", DEBTORS_HEADER + "\n")
        )
        assert (summary.rows_read, summary.inserted, summary.rejected) == (0, 0, 0)

    def test_short_and_long_rows(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟\nD2,李娜,,,,extra\nD3,王芳,,,\n"
        )
        summary = load(session, institution, "debtors", path)
        assert (summary.inserted, summary.reject_counts) == (1, {"field_count": 2})

    def test_xlsx_with_formulas(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["external_id", "name", "national_id", "birth_date", "deceased"])
        sheet.append(["D1", "张伟", "110101198803140212", None, False])
        sheet.append(["D2", '=HYPERLINK("http://evil.example","x")', None, None, None])
        sheet.append(["D3", "李娜", None, None, "=1+1"])
        path = tmp_path / "debtors.xlsx"
        workbook.save(path)
        summary = load(session, institution, "debtors", path)
        assert (summary.file_format, summary.inserted) == ("xlsx", 1)
        assert summary.reject_counts == {"formula_cell": 2}

    def test_not_really_xlsx(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        with pytest.raises(UnusableFile, match="XLSX"):
            load(session, institution, "debtors", write(tmp_path, "d.xlsx", b"PK\x03\x04garbage"))

    def test_json_lines(self, session: Session, institution: Institution, tmp_path: Path) -> None:
        lines = [
            '{"external_id": "D1", "name": "张伟", "deceased": false, "extra": 1}',
            "not json",
            '{"external_id": "D2", "name": ["a"]}',
            '{"external_id": "D3", "name": "李娜", "birth_date": "1990-02-01"}',
        ]
        summary = load(
            session, institution, "debtors", write(tmp_path, "d.jsonl", "\n".join(lines))
        )
        assert summary.inserted == 2
        assert summary.reject_counts == {"bad_json": 1, "bad_value": 1}
        assert summary.ignored_columns == ["extra"]


class TestDataQuality:
    def test_report(self, session: Session, institution: Institution, tmp_path: Path) -> None:
        load_examples(session, institution, tmp_path)
        shared = write(
            tmp_path,
            "shared.csv",
            "external_id,debtor_external_id,kind,value,relation\n"
            "C9001,D0002,mobile,13812345678,relative\n"
            "C9002,D0003,mobile,138 1234 5678,colleague\n"
            "C9003,D0003,mobile,12345,self\n",
        )
        load(session, institution, "contacts", shared)
        report = data_quality_report(session, institution=institution)
        assert report.debtors == 8
        assert report.debtors_with_valid_self_contact == 6
        assert report.valid_self_contact_share == 0.75
        assert report.contact_points == 17
        assert report.shared_phone_numbers == 1
        assert report.debtors_sharing_a_phone == 3
        assert report.top_shared_phones[0].phone.endswith("5678")
        assert "1234" not in report.top_shared_phones[0].phone
        assert report.missing_fields["debtors"]["employer"] == 3
        assert {(r.kind, r.code, r.count) for r in report.rejects_by_reason} == {
            ("contacts", "bad_phone", 1)
        }


class TestFileBreakingPartWay:
    def test_rows_before_the_break_are_committed_and_the_run_says_so(
        self,
        session: Session,
        institution: Institution,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from recoup.ingest import readers, runner

        path = write(
            tmp_path, "d.csv", DEBTORS_HEADER + "\n" + "".join(f"D{i},张伟,,,\n" for i in range(7))
        )
        real_open = readers.open_source

        def breaking_open(*args: object, **kwargs: object) -> readers.Source:
            source = real_open(*args, **kwargs)  # type: ignore[arg-type]
            rows = source.rows

            def broken() -> object:
                for index, row in enumerate(rows):
                    if index == 5:
                        raise UnusableFile(
                            "row 7 cannot be read as CSV: field larger than field limit"
                        )
                    yield row

            source.rows = broken()  # type: ignore[assignment]
            return source

        monkeypatch.setattr(runner, "open_source", breaking_open)
        with pytest.raises(UnusableFile, match="The 4 rows before it were committed"):
            load(session, institution, "debtors", path, chunk_size=2)
        assert count(session, Debtor) == 4
        run = session.execute(select(ImportRun)).scalar_one()
        assert (run.status, run.rows_read) == ("failed", 4)
        assert run.message
        assert "field larger" in run.message


def seven_debtors(folder: Path) -> Path:
    return write(
        folder, "d.csv", DEBTORS_HEADER + "\n" + "".join(f"D{i},张伟,,,\n" for i in range(7))
    )


def stop_at_third_chunk(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    from recoup.ingest import runner

    real_write = runner.write_chunk
    calls = []

    def write_then_stop(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise error
        return real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "write_chunk", write_then_stop)


class TestStrayNulBytes:
    """A mainframe export with a stray NUL loses that row, not the file."""

    def test_the_row_with_a_nul_is_rejected_naming_the_field_and_the_rest_import(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        content = f"{DEBTORS_HEADER}\nD1,张伟,,广东省,深圳市\nD2,李娜,,广东省,深圳\x00\x00市\nD3,王芳,,,\n"
        summary = load(session, institution, "debtors", write(tmp_path, "mainframe.csv", content))
        assert (summary.rows_read, summary.inserted, summary.rejected) == (3, 2, 1)
        assert summary.reject_counts == {"nul_byte": 1}
        stored = session.execute(select(Debtor.external_id).order_by(Debtor.external_id))
        assert stored.scalars().all() == ["D1", "D3"]
        (reject,) = session.execute(select(ImportReject)).scalars()
        assert (reject.row_number, reject.field, reject.code) == (3, "city", "nul_byte")
        assert reject.value == "深圳␀␀市"
        assert "NUL byte" in reject.reason
        (reported,) = report_rows(summary.reject_report)
        assert (reported["row"], reported["field"], reported["code"]) == ("3", "city", "nul_byte")

    def test_a_nul_in_a_personal_field_is_rejected_with_the_value_masked(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        content = f"{DEBTORS_HEADER}\nD1,张\x00伟,,,\nD2,李娜,,,\n"
        summary = load(session, institution, "debtors", write(tmp_path, "pii.csv", content))
        assert (summary.inserted, summary.reject_counts) == (1, {"nul_byte": 1})
        (reject,) = session.execute(select(ImportReject)).scalars()
        assert reject.field == "name"
        assert "伟" not in reject.value
        assert "\x00" not in reject.value

    def test_a_nul_past_the_first_bytes_is_rejected_too(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        rows = "".join(f"D{i},张伟,,广东省,深圳市\n" for i in range(12_000))
        content = f"{DEBTORS_HEADER}\n{rows}D99999,李娜,,广\x00东省,\n"
        assert content.encode().index(b"\x00") > 256 * 1024
        summary = load(session, institution, "debtors", write(tmp_path, "late.csv", content))
        assert (summary.inserted, summary.reject_counts) == (12_000, {"nul_byte": 1})

    def test_json_lines_with_a_nul_escape_reject_the_row(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        content = (
            '{"external_id": "J1", "name": "张伟"}\n'
            '{"external_id": "J2", "name": "李娜", "city": "深圳\\u0000"}\n'
        )
        summary = load(session, institution, "debtors", write(tmp_path, "d.jsonl", content))
        assert (summary.inserted, summary.reject_counts) == (1, {"nul_byte": 1})
        (reject,) = session.execute(select(ImportReject)).scalars()
        assert (reject.field, reject.value) == ("city", "深圳␀")

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(4096), id="image"),
            pytest.param(
                f"{DEBTORS_HEADER}\nD1,张伟,,,\n".encode("utf-16-le"), id="utf-16 without BOM"
            ),
            pytest.param(bytes(range(256)) * 40, id="noise"),
        ],
    )
    def test_a_really_binary_file_is_still_refused_whole(
        self, session: Session, institution: Institution, tmp_path: Path, content: bytes
    ) -> None:
        with pytest.raises(UnusableFile, match="binary, not CSV text"):
            load(session, institution, "debtors", write(tmp_path, "binary.csv", content))
        assert count(session, Debtor) == 0

    def test_a_nul_in_the_header_refuses_the_file(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        content = "external_id,na\x00me,national_id,province,city\nD1,张伟,,,\n"
        with pytest.raises(UnusableFile, match=r"header row .* holds a NUL byte"):
            load(session, institution, "debtors", write(tmp_path, "header.csv", content))


class TestImportStopped:
    def test_ctrl_c_records_the_run_as_interrupted_and_the_rerun_completes(
        self,
        session: Session,
        institution: Institution,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        path = seven_debtors(tmp_path)
        stop_at_third_chunk(monkeypatch, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            load(session, institution, "debtors", path, chunk_size=2)
        run = session.execute(select(ImportRun)).scalar_one()
        assert (run.status, run.rows_read, run.inserted) == ("interrupted", 4, 4)
        assert run.finished_at is not None
        assert run.message
        assert "The import was stopped. The 4 rows before it were committed" in run.message
        assert count(session, Debtor) == 4

        monkeypatch.undo()
        summary = load(session, institution, "debtors", path, chunk_size=2)
        assert (summary.inserted, summary.unchanged) == (3, 4)
        assert count(session, Debtor) == 7

    def test_an_error_records_the_run_as_failed_with_the_error(
        self,
        session: Session,
        institution: Institution,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        stop_at_third_chunk(monkeypatch, OSError("No space left on device"))
        with pytest.raises(OSError, match="No space left"):
            load(session, institution, "debtors", seven_debtors(tmp_path), chunk_size=2)
        run = session.execute(select(ImportRun)).scalar_one()
        assert (run.status, run.rows_read) == ("failed", 4)
        assert run.message
        assert "No space left on device" in run.message

    def test_the_next_import_records_a_silent_run_as_interrupted(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        now = utcnow()
        other_institution = make_institution(session)

        killed = running_import(session, institution, silent_for=timedelta(minutes=10), now=now)
        alive = running_import(session, institution, silent_for=timedelta(seconds=10), now=now)
        elsewhere = running_import(
            session, other_institution, silent_for=timedelta(minutes=10), now=now
        )
        session.commit()

        load(session, institution, "debtors", seven_debtors(tmp_path))
        session.expire_all()
        assert killed.status == "interrupted"
        assert killed.finished_at == now - timedelta(minutes=10)
        assert killed.message
        assert "stopped without finishing" in killed.message
        assert (alive.status, alive.finished_at) == ("running", None)
        assert elsewhere.status == "running"


class TestInjection:
    def test_sql_text_is_stored_as_data(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        name = "Robert'); DROP TABLE debtors;--"
        path = write(tmp_path, "d.csv", f'{DEBTORS_HEADER}\nD1,"{name}",,,\n')
        assert load(session, institution, "debtors", path).inserted == 1
        assert session.execute(select(Debtor.name)).scalar_one() == name


class TestReversals:
    """A payments file reverses payments with its reversed_at and reversal_reason columns."""

    HEADER = "external_id,account_external_id,amount,currency,paid_at,reversed_at,reversal_reason"

    def test_rows_reverse_their_payments_and_bad_ones_name_the_field(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load_examples(session, institution, tmp_path)
        a0001 = session.execute(
            select(Account).where(
                Account.institution_id == institution.id, Account.external_id == "A0001"
            )
        ).scalar_one()
        before = a0001.balance
        rows = (
            # The example's payment, sent again with its reversal.
            "P0001,A0001,500.00,CNY,2025-10-20T14:32:00+08:00,2025-10-25T09:00:00+08:00,cheque bounced",
            # A new payment reversed in the same row.
            "P9101,A0001,80.00,CNY,2025-11-01T10:00:00+08:00,2025-11-02T10:00:00+08:00,charged back",
            "P9102,A0001,10.00,CNY,2025-11-01T10:00:00+08:00,2025-10-31T10:00:00+08:00,bounced",
            "P9103,A0001,10.00,CNY,2025-11-01T10:00:00+08:00,2025-11-02T10:00:00+08:00,",
            "P9104,A0001,10.00,CNY,2025-11-01T10:00:00+08:00,,keyed in error",
            "P9105,A0001,20.00,CNY,2025-11-01T10:00:00+08:00,,",
        )
        path = write(tmp_path, "reversals.csv", "\n".join([self.HEADER, *rows]) + "\n")
        summary = load(session, institution, "payments", path)
        assert (summary.inserted, summary.updated, summary.unchanged) == (2, 1, 0)
        assert summary.reject_counts == {"reversed_before_paid": 1, "missing_value": 2}
        problems = {row["row"]: row for row in report_rows(summary.reject_report)}
        assert (problems["4"]["field"], problems["4"]["code"]) == (
            "reversed_at",
            "reversed_before_paid",
        )
        assert "at or after its paid_at" in problems["4"]["reason"]
        assert problems["5"]["field"] == "reversal_reason"
        assert problems["6"]["field"] == "reversed_at"
        payments = {
            payment.external_id: payment
            for payment in session.execute(
                select(Payment).where(Payment.institution_id == institution.id)
            ).scalars()
        }
        assert payments["P0001"].reversal_reason == "cheque bounced"
        assert payments["P9101"].reversal_reason == "charged back"
        assert payments["P9105"].reversed_at is None
        assert {"P9102", "P9103", "P9104"}.isdisjoint(payments)
        session.refresh(a0001)
        # P0001 and P9101 no longer count; only P9105's 20.00 stands.
        assert a0001.balance == before + 50_000 - 2_000

        # The same file again changes nothing twice.
        again = load(session, institution, "payments", path)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
        session.refresh(a0001)
        assert a0001.balance == before + 50_000 - 2_000
