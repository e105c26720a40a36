"""The scheduled file drop: real files in a temporary drop root, imported once, filed away."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup import config
from recoup.cli import app as cli_app
from recoup.db import unit_of_work
from recoup.enums import ImportKind
from recoup.institutions import service as institutions
from recoup.integration import drops, rules, tasks
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models import Account, Debtor, Institution
from recoup.models.ingest import ImportRun
from tests.factories import make_institution

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
OLD = time.time() - 3600


@pytest.fixture
def drop_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "drops"
    monkeypatch.setenv("RECOUP_DROP_ROOT", str(root))
    config.get_settings.cache_clear()
    yield root
    monkeypatch.delenv("RECOUP_DROP_ROOT")
    config.get_settings.cache_clear()


def _enabled(session: Session, *, settle: int = 60, folder: str | None = None) -> Institution:
    institution = make_institution(session)
    institutions.update_settings(
        session,
        institution=institution,
        changes={
            "integration": {
                "drop_enabled": True,
                "drop_settle_seconds": settle,
                "drop_folder": folder,
            }
        },
        actor="test",
    )
    return institution


def _drop(folder: Path, name: str, content: bytes, *, age: float | None = OLD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    if age is not None:
        os.utime(path, (age, age))
    return path


def _example(kind: str) -> bytes:
    return (EXAMPLES / f"{kind}.csv").read_bytes()


def _count(session: Session, model: type[Debtor] | type[Account], institution: Institution) -> int:
    query = select(func.count()).select_from(model).where(model.institution_id == institution.id)
    return session.scalar(query) or 0


def _runs(session: Session, institution: Institution) -> int:
    query = select(func.count()).select_from(ImportRun)
    return session.scalar(query.where(ImportRun.institution_id == institution.id)) or 0


# The settle check also reads the inode's change time, which a test cannot set back: scans
# that must see a file as settled look from an hour ahead.
LATER = timedelta(minutes=5)


class TestRules:
    def test_kind_from_the_name(self) -> None:
        assert rules.kind_of("accounts-2026-12-07.csv") == ImportKind.accounts
        assert rules.kind_of("Payments_day.XLSX") == ImportKind.payments
        assert rules.kind_of("debtors.jsonl") == ImportKind.debtors
        assert rules.kind_of("accountsX.csv") is None
        assert rules.kind_of("accounts.txt") is None
        assert rules.kind_of("loans.csv") is None

    def test_partial_names(self) -> None:
        assert rules.is_partial("accounts.csv.part")
        assert rules.is_partial("accounts.csv.filepart")
        assert rules.is_partial(".accounts.csv")
        assert rules.is_partial("~$accounts.xlsx")
        assert not rules.is_partial("accounts.csv")

    def test_the_plan_orders_by_kind(self) -> None:
        files = [
            rules.DropFile("payments.csv", 10, 0),
            rules.DropFile("accounts.csv", 10, 0),
            rules.DropFile("debtors-b.csv", 10, 0),
            rules.DropFile("debtors-a.csv", 10, 0),
            rules.DropFile("fresh-accounts.csv", 10, 95),
            rules.DropFile("accounts-new.csv", 10, 95),
            rules.DropFile("accounts.csv.part", 10, 0),
            rules.DropFile("notes.txt", 10, 0),
        ]
        planned = rules.plan(files, now=100, settle_seconds=10)
        assert [(f.name, str(k)) for f, k in planned.ready] == [
            ("debtors-a.csv", "debtors"),
            ("debtors-b.csv", "debtors"),
            ("accounts.csv", "accounts"),
            ("payments.csv", "payments"),
        ]
        assert {f.name for f in planned.waiting} == {
            "fresh-accounts.csv",
            "accounts-new.csv",
            "accounts.csv.part",
        }
        assert [f.name for f in planned.unknown] == ["notes.txt"]


class TestScan:
    def test_files_are_imported_in_order_and_filed(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session)
        folder = drop_root / institution.code
        _drop(folder, "accounts-1207.csv", _example("accounts"))
        _drop(folder, "debtors-1207.csv", _example("debtors"))
        now = utcnow() + LATER
        outcomes = drops.scan(session, institution=institution, now=now)
        assert [(o.name, o.status) for o in outcomes] == [
            ("debtors-1207.csv", "imported"),
            ("accounts-1207.csv", "imported"),
        ]
        assert _count(session, Debtor, institution) == 8
        assert _count(session, Account, institution) == 9
        stamp = f"{now:%Y%m%dT%H%M%SZ}"
        processed = sorted(path.name for path in (folder / "processed").iterdir())
        assert f"{stamp}-accounts-1207.csv" in processed
        assert f"{stamp}-debtors-1207.csv.report.txt" in processed
        report = (folder / "processed" / f"{stamp}-accounts-1207.csv.report.txt").read_text()
        assert "rows read: 9; inserted 9" in report
        assert "sha256: " in report
        assert not [p for p in folder.iterdir() if p.is_file()]
        assert not list((folder / "processing").iterdir())

    def test_each_file_once_by_checksum(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session)
        folder = drop_root / institution.code
        _drop(folder, "debtors.csv", _example("debtors"))
        drops.scan(session, institution=institution, now=utcnow() + LATER)
        runs = _runs(session, institution)
        _drop(folder, "debtors-again.csv", _example("debtors"))
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + 2 * LATER)
        assert outcome.status == "duplicate"
        assert outcome.moved_to.parent.name == "processed"
        assert "the same content was imported before: debtors.csv" in outcome.report.read_text()
        assert _runs(session, institution) == runs

    def test_a_file_being_written_waits(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session, settle=60)
        folder = drop_root / institution.code
        _drop(folder, "debtors.csv.part", _example("debtors"))
        _drop(folder, "debtors.csv", _example("debtors"), age=None)  # changed just now
        assert drops.scan(session, institution=institution) == []
        assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
            "debtors.csv",
            "debtors.csv.part",
        ]
        # Once it has not changed for the settle time, the next tick takes it.
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + LATER)
        assert outcome.name == "debtors.csv"
        assert (folder / "debtors.csv.part").exists()

    def test_refused_rows_are_named_and_the_rest_imported(
        self, session: Session, drop_root: Path
    ) -> None:
        institution = _enabled(session, settle=0)
        folder = drop_root / institution.code
        _drop(folder, "debtors.csv", _example("debtors"))
        lines = _example("accounts").decode("utf-8").splitlines()
        lines[2] = lines[2].replace("18000.00", "18x00")
        _drop(folder, "accounts.csv", ("\n".join(lines) + "\n").encode())
        outcomes = drops.scan(session, institution=institution, now=utcnow() + LATER)
        accounts = outcomes[-1]
        assert accounts.status == "partly_rejected"
        assert accounts.moved_to.parent.name == "rejected"
        report = accounts.report.read_text()
        assert "row 3, principal = '18x00'" in report
        assert "fix these rows and drop the file again" in report
        assert Path(f"{accounts.moved_to}.rejects.csv").exists()
        assert _count(session, Account, institution) == 8

    def test_an_unusable_file_is_rejected_with_why(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session, settle=0)
        folder = drop_root / institution.code
        _drop(folder, "accounts.csv", b"external_id,colour\nA1,blue\n")
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + LATER)
        assert outcome.status == "rejected"
        assert outcome.moved_to.parent.name == "rejected"
        report = outcome.report.read_text()
        assert "status: rejected, nothing imported" in report
        assert "debtor_external_id" in report

    def test_an_unknown_name_is_rejected(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session, settle=0)
        folder = drop_root / institution.code
        _drop(folder, "loans.csv", _example("accounts"))
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + LATER)
        assert outcome.status == "rejected"
        assert "rename it" in outcome.report.read_text()

    def test_xlsx(self, session: Session, drop_root: Path, tmp_path: Path) -> None:
        institution = _enabled(session, settle=0)
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        for line in _example("debtors").decode("utf-8-sig").splitlines():
            sheet.append(line.split(","))
        made = tmp_path / "debtors.xlsx"
        book.save(made)
        folder = drop_root / institution.code
        _drop(folder, "debtors-book.xlsx", made.read_bytes())
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + LATER)
        assert outcome.status == "imported", outcome.report.read_text()
        assert _count(session, Debtor, institution) == 8

    def test_a_file_left_by_a_stopped_import_is_put_back(
        self, session: Session, drop_root: Path
    ) -> None:
        institution = _enabled(session, settle=0)
        folder = drop_root / institution.code
        _drop(folder / "processing", "debtors.csv", _example("debtors"))
        assert drops.scan(session, institution=institution, now=utcnow() + LATER) == []
        outcomes = drops.scan(
            session, institution=institution, now=utcnow() + drops.STUCK_AFTER + LATER
        )
        assert [o.status for o in outcomes] == ["imported"]

    def test_the_configured_folder(self, session: Session, drop_root: Path) -> None:
        institution = _enabled(session, settle=0, folder="sftp/bank-a")
        _drop(drop_root / "sftp" / "bank-a", "debtors.csv", _example("debtors"))
        (outcome,) = drops.scan(session, institution=institution, now=utcnow() + LATER)
        assert outcome.status == "imported"

    @pytest.mark.parametrize("folder", ["../etc", "/etc", "a/../../b", "~/x"])
    def test_a_folder_outside_the_root_is_refused(self, session: Session, folder: str) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="drop_folder"):
            institutions.update_settings(
                session,
                institution=institution,
                changes={"integration": {"drop_folder": folder}},
                actor="test",
            )


class TestJob:
    def test_only_institutions_with_the_drop_on(self, session: Session, drop_root: Path) -> None:
        on = _enabled(session, settle=0)
        off = make_institution(session)
        _drop(drop_root / on.code, "debtors.csv", _example("debtors"))
        _drop(drop_root / off.code, "debtors.csv", _example("debtors"))
        tasks.scan_drops(session, {})
        assert _count(session, Debtor, on) == 8
        assert _count(session, Debtor, off) == 0
        assert (drop_root / off.code / "debtors.csv").exists()

    def test_a_broken_folder_does_not_stop_the_others(
        self, session: Session, drop_root: Path
    ) -> None:
        broken = _enabled(session, settle=0)
        working = _enabled(session, settle=0)
        drop_root.mkdir(parents=True, exist_ok=True)
        (drop_root / broken.code).write_text("a file where the folder should be")
        _drop(drop_root / working.code, "debtors.csv", _example("debtors"))
        with pytest.raises(RuntimeError, match=broken.code):
            tasks.scan_drops(session, {})
        assert _count(session, Debtor, working) == 8


class TestCli:
    def test_drop_scan(self, cli_db: str, drop_root: Path) -> None:
        with unit_of_work() as session:
            code = _enabled(session, settle=0).code
        shutil.copy(EXAMPLES / "debtors.csv", _drop(drop_root / code, "debtors.csv", b""))
        os.utime(drop_root / code / "debtors.csv", (OLD, OLD))
        result = CliRunner().invoke(cli_app, ["integrate", "drop-scan", "--institution", code])
        assert result.exit_code == 0, result.output
        assert "debtors.csv: imported" in result.output
