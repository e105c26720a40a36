"""``recoup import …`` and ``recoup dq report`` on a temporary SQLite file, and the DQ API route."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup import config, db
from recoup.cli import app
from recoup.models import Base, Institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.ingest.conftest import DEBTORS_HEADER, EXAMPLES, KINDS_IN_ORDER, load_examples, write


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SQLite database with one institution, used by the CLI through RECOUP_DATABASE_URL."""
    path = tmp_path / "cli.db"
    monkeypatch.setenv("RECOUP_DATABASE_URL", f"sqlite:///{path}")
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    Base.metadata.create_all(db.get_engine())
    result = CliRunner().invoke(app, ["institutions", "create", "CF1", "--name", "示例消费金融"])
    assert result.exit_code == 0, result.output
    yield path
    db.get_engine().dispose()
    monkeypatch.delenv("RECOUP_DATABASE_URL")
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()


def invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


class TestImportCommand:
    def test_examples_then_reimport_then_dq_report(
        self, cli_database: Path, tmp_path: Path
    ) -> None:
        for kind in KINDS_IN_ORDER:
            path = write(tmp_path, f"{kind}.csv", (EXAMPLES / f"{kind}.csv").read_bytes())
            code, output = invoke("import", kind, str(path), "--institution", "CF1")
            assert code == 0, output
            assert "rejected" in output
            assert not path.with_name(path.name + ".rejects.csv").exists()
        code, output = invoke(
            "import", "debtors", str(tmp_path / "debtors.csv"), "--institution", "CF1"
        )
        assert code == 0
        assert "unchanged" in output
        code, output = invoke("dq", "report", "--institution", "CF1", "--json")
        assert code == 0, output
        report = json.loads(output)
        assert report["debtors"] == 8
        assert report["valid_self_contact_share"] == 0.75
        assert {run["kind"] for run in report["latest_imports"]} == set(KINDS_IN_ORDER)
        code, output = invoke("dq", "report", "--institution", "CF1")
        assert code == 0
        assert "Data quality of CF1" in output

    def test_the_progress_bar_counts_rows_not_bytes(
        self, cli_database: Path, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "debtors.csv", (EXAMPLES / "debtors.csv").read_bytes())
        code, output = invoke("import", "debtors", str(path), "--institution", "CF1")
        assert code == 0, output
        assert "8 rows" in output
        assert f"{path.stat().st_size}/{path.stat().st_size}" not in output

    def test_a_missing_column_message_reads_as_english(
        self, cli_database: Path, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "accounts.csv", "external_id,name\nA1,x\n")
        code, output = invoke("import", "accounts", str(path), "--institution", "CF1")
        assert code == 1
        assert "for an import of accounts" in " ".join(output.split())

    def test_rejects_exit_zero_and_write_a_report(self, cli_database: Path, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "d.csv",
            f"{DEBTORS_HEADER}\nD1,张伟,,,\nD2,李四,,=HYPERLINK(1),\nD3,李娜,110101198803140213,,\n",
        )
        report = tmp_path / "out" / "rejects.csv"
        report.parent.mkdir()
        code, output = invoke(
            "import", "debtors", str(path), "--institution", "CF1", "--reject-report", str(report)
        )
        assert code == 0, output
        lines = report.read_text(encoding="utf-8-sig").splitlines()
        assert lines[0] == "row,field,value,reason,code"
        assert lines[1].startswith("3,province,'=HYPERLINK(1),")
        assert lines[2].startswith("4,national_id,110101********0213,")

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"", "empty"),
            (b"external_id,product\nA1,x\n", "missing required column(s) debtor_external_id"),
            (bytes(range(128, 256)) * 20, "neither UTF-8 nor GBK"),
            (bytes(range(256)) * 20, "binary"),
        ],
    )
    def test_unusable_file_exits_one_with_a_message(
        self, cli_database: Path, tmp_path: Path, content: bytes, message: str
    ) -> None:
        path = write(tmp_path, "accounts.csv", content)
        code, output = invoke("import", "accounts", str(path), "--institution", "CF1")
        assert code == 1
        assert message in " ".join(output.split())
        assert "Traceback" not in output

    def test_declared_encoding_that_does_not_fit(self, cli_database: Path, tmp_path: Path) -> None:
        path = write(
            tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,广东省,深圳市\n", encoding="gbk"
        )
        code, output = invoke(
            "import", "debtors", str(path), "--institution", "CF1", "--encoding", "utf-8"
        )
        assert code == 1
        assert "omit --encoding" in " ".join(output.split())
        code, output = invoke(
            "import", "debtors", str(path), "--institution", "CF1", "--encoding", "gbk"
        )
        assert code == 0, output

    def test_unknown_institution(self, cli_database: Path, tmp_path: Path) -> None:
        path = write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,\n")
        code, output = invoke("import", "debtors", str(path), "--institution", "NOPE")
        assert code == 1
        assert "no institution" in output


class TestDataQualityRoute:
    def test_report_for_the_callers_institution(
        self, session: Session, tmp_path: Path, institution: Institution
    ) -> None:
        load_examples(session, institution, tmp_path)
        manager = make_user(session, institution, role="manager")
        agent = make_user(session, institution, role="agent")
        with client_for(session) as client:
            response = client.get("/api/v1/dq/report", headers=bearer(manager))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["institution"] == institution.code
            assert body["debtors_with_valid_self_contact"] == 6
            assert_problem(client.get("/api/v1/dq/report"), 401)
            assert_problem(client.get("/api/v1/dq/report", headers=bearer(agent)), 403)
            assert_problem(
                client.get("/api/v1/dq/report?institution=OTHER", headers=bearer(manager)), 404
            )


SRC = Path(__file__).resolve().parents[2] / "src"
MANY_DEBTORS = 20_000


def start_import(database: Path, path: Path) -> subprocess.Popen[bytes]:
    """Start ``recoup import debtors`` in its own process, committing every 100 rows."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from recoup.cli import main; main()",
            "import",
            "debtors",
            str(path),
            "--institution",
            "CF1",
            "--chunk-size",
            "100",
        ],
        # Its own key ring in the database's folder, the same for every process of a test.
        env={
            **os.environ,
            "PYTHONPATH": str(SRC),
            "RECOUP_DATABASE_URL": f"sqlite:///{database}",
            "RECOUP_DATA_DIR": str(database.parent),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def runs(database: Path) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT status, rows_read, message FROM import_runs ORDER BY id"
        ).fetchall()


def wait_for_rows(database: Path, process: subprocess.Popen[bytes]) -> None:
    """Wait until the import has committed some rows but not all of them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        found = runs(database)
        if found and 0 < found[-1][1] < MANY_DEBTORS:
            return
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the import committed no rows in time: {runs(database)}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
class TestImportProcessStopped:
    @pytest.fixture
    def many_debtors(self, tmp_path: Path) -> Path:
        rows = "".join(f"D{i},张伟,,,\n" for i in range(MANY_DEBTORS))
        return write(tmp_path, "many.csv", f"{DEBTORS_HEADER}\n{rows}")

    def test_sigterm_records_the_run_as_interrupted(
        self, cli_database: Path, many_debtors: Path
    ) -> None:
        process = start_import(cli_database, many_debtors)
        wait_for_rows(cli_database, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        ((status, rows_read, message),) = runs(cli_database)
        assert status == "interrupted"
        assert message
        assert f"The import was stopped. The {rows_read} rows before it were committed" in message

    def test_after_kill_9_the_run_shows_interrupted_and_the_rerun_completes(
        self, cli_database: Path, many_debtors: Path
    ) -> None:
        process = start_import(cli_database, many_debtors)
        wait_for_rows(cli_database, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        ((status, committed, _message),) = runs(cli_database)
        assert status == "running"
        # The process is gone; let its heartbeat age past the timeout instead of waiting.
        with sqlite3.connect(cli_database) as connection:
            connection.execute(
                "UPDATE import_runs SET updated_at = datetime(updated_at, '-10 minutes')"
            )

        assert start_import(cli_database, many_debtors).wait(timeout=120) == 0
        (killed, rerun) = runs(cli_database)
        assert killed[0] == "interrupted"
        assert killed[2]
        assert "stopped without finishing" in killed[2]
        assert rerun[:2] == ("completed", MANY_DEBTORS)
        with sqlite3.connect(cli_database) as connection:
            (debtors,) = connection.execute("SELECT count(*) FROM debtors").fetchone()
            (inserted, unchanged) = connection.execute(
                "SELECT inserted, unchanged FROM import_runs ORDER BY id DESC LIMIT 1"
            ).fetchone()
        assert debtors == MANY_DEBTORS
        assert (inserted, unchanged) == (MANY_DEBTORS - committed, committed)
