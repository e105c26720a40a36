"""The import and data-quality pages in headless Chromium: the report, the runs, one run's
masked rejects and their CSV download, as a manager, an agent and another institution."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.identity import service as identity
from recoup.ingest.runner import run_import
from recoup.models import AuditEvent
from recoup.models.ingest import ImportRun
from recoup.web import localization
from tests.factories import make_institution
from tests.web.support import (
    DEBTOR_PHONE,
    PASSWORD,
    LiveServer,
    database_session,
    log_in,
    screenshot,
)

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
DEBTOR_COLUMNS = (
    "external_id,name,kind,national_id,birth_date,province,city,district,timezone,language,"
    "employer,deceased,bankrupt,disputed,cease_contact,attorney_represented,hardship"
)
BAD_NATIONAL_ID = "110101199003071235"
FORMULA_NAME = "=cmd|' /C calc'!A0"
HOSTILE_DEBTORS = "\n".join(
    [
        DEBTOR_COLUMNS,
        f"H0001,{FORMULA_NAME},individual,{BAD_NATIONAL_ID},1990-03-07,北京市,北京市,东城区,"
        "Asia/Shanghai,zh-CN,,false,false,false,false,false,false",
        "H0002,赵敏,individual,11010119900307123X,2999-01-01,北京市,北京市,东城区,"
        "Asia/Shanghai,zh-CN,,maybe,false,false,false,false,false",
    ]
)
BAD_PHONE = "1391234567899"
HOSTILE_CONTACTS = "\n".join(
    [
        "external_id,debtor_external_id,kind,value,relation,contact_name,status,source,verified_at,"
        "opt_out_call,opt_out_sms,opt_out_email,consent_automated,consent_recorded_at,consent_source",
        f"HC001,D0001,mobile,{BAD_PHONE},self,,valid,core,,false,false,false,false,,",
        'HC002,D0001,mobile,"=HYPERLINK(""http://evil.example"")",self,,valid,core,,'
        "false,false,false,false,,",
    ]
)


@dataclass(frozen=True)
class Imported:
    """The import runs this module adds to the seeded database."""

    run_ids: list[int]
    hostile_debtors_run_id: int
    other_institution_run_id: int


@pytest.fixture(scope="module")
def imported(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """The example files and two hostile ones imported for WEBBANK, one for OTHERBANK."""
    folder = tmp_path_factory.mktemp("imports")
    (folder / "hostile_debtors.csv").write_text(HOSTILE_DEBTORS, encoding="utf-8")
    (folder / "hostile_contacts.csv").write_text(HOSTILE_CONTACTS, encoding="utf-8")
    files = [
        ("WEBBANK", "debtors", EXAMPLES / "debtors.csv"),
        ("WEBBANK", "contacts", EXAMPLES / "contacts.csv"),
        ("WEBBANK", "accounts", EXAMPLES / "accounts.csv"),
        ("WEBBANK", "debtors", folder / "hostile_debtors.csv"),
        ("WEBBANK", "contacts", folder / "hostile_contacts.csv"),
        ("OTHERBANK", "debtors", EXAMPLES / "debtors.csv"),
    ]
    run_ids = []
    with database_session(live_server) as session:
        for code, kind, path in files:
            summary = run_import(
                session,
                institution_code=code,
                kind=kind,
                path=path,
                reject_report=folder / f"{len(run_ids)}.rejects.csv",
                actor="test",
            )
            run_ids.append(summary.run_id)
        empty = make_institution(session, code="EMPTYBANK")
        identity.create_user(
            session,
            username="empty-manager",
            role="manager",
            institution_id=empty.id,
            password=PASSWORD,
            actor="test",
        )
        session.commit()
    return Imported(
        run_ids=run_ids[:5], hostile_debtors_run_id=run_ids[3], other_institution_run_id=run_ids[5]
    )


class TestReport:
    def test_manager_sees_the_quality_cards_and_the_runs_newest_first(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        log_in(page, live_server, "manager", next_path="/imports")

        share = page.get_by_test_id("card-contact-share")
        expect(share).to_contain_text("有有效本人联系方式的债务人")
        expect(share).to_have_attribute("data-level", "warn")
        expect(page.get_by_test_id("card-stale-contacts")).to_contain_text("180")
        expect(page.get_by_test_id("card-shared-phones")).to_contain_text("1")
        masked_phone = f"{DEBTOR_PHONE[:3]}****{DEBTOR_PHONE[-4:]}"
        expect(page.get_by_test_id("shared-phones-table")).to_contain_text(masked_phone)
        expect(page.get_by_test_id("missing-fields-table")).to_contain_text("出生日期")
        reasons = page.get_by_test_id("rejects-by-reason-table")
        expect(reasons).to_contain_text("身份证号无效")
        expect(reasons).to_contain_text("电话号码无效")

        rows = page.get_by_test_id("run-row")
        expect(rows).to_have_count(5)
        expect(rows.first).to_contain_text("hostile_contacts.csv")
        expect(rows.last).to_contain_text("debtors.csv")
        with database_session(live_server) as session:
            newest = session.get(ImportRun, imported.run_ids[-1])
            assert newest is not None
            started = localization.moment(newest.started_at, "zh-CN", "Asia/Shanghai")
        expect(rows.first).to_contain_text(started)
        expect(rows.first).to_contain_text("已完成")

        content = page.content()
        assert DEBTOR_PHONE not in content
        assert BAD_PHONE not in content
        screenshot(page, Path("/tmp/imports-report.png"), title="导入与数据质量")

    def test_an_institution_without_imports_is_shown_how_to_import(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        log_in(page, live_server, "empty-manager", next_path="/imports")

        expect(page.get_by_test_id("empty-state")).to_be_visible()
        commands = page.get_by_test_id("import-commands")
        expect(commands).to_contain_text("recoup import accounts FILE --institution EMPTYBANK")
        expect(commands).to_contain_text("recoup dq report --institution EMPTYBANK")


class TestRun:
    def test_manager_opens_a_run_and_sees_its_rejects_masked(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        log_in(page, live_server, "manager", next_path="/imports")
        page.get_by_test_id("run-row").filter(has_text="hostile_debtors.csv").get_by_role(
            "link", name="hostile_debtors.csv"
        ).click()

        page.wait_for_url(f"**/imports/{imported.hostile_debtors_run_id}")
        expect(page.get_by_test_id("run-rejected")).to_have_text("2")
        rejects = page.get_by_test_id("reject-row")
        expect(rejects).to_have_count(5)
        expect(rejects.first).to_contain_text("电子表格公式")
        table = page.get_by_test_id("rejects-table")
        expect(table).to_contain_text("110101********1235")
        expect(table).to_contain_text("不是“是/否”")
        content = page.content()
        assert BAD_NATIONAL_ID not in content
        assert "calc" not in content
        screenshot(
            page,
            Path("/tmp/imports-run.png"),
            title=f"导入 #{imported.hostile_debtors_run_id} · 导入与数据质量",
        )

    def test_the_rejects_download_is_masked_formula_safe_and_audited(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        run_id = imported.hostile_debtors_run_id
        log_in(page, live_server, "manager", next_path=f"/imports/{run_id}")

        with page.expect_download() as download:
            page.get_by_test_id("download-rejects").click()
        assert download.value.suggested_filename == f"import-{run_id}-rejects.csv"
        body = Path(download.value.path()).read_bytes()

        assert body.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[0] == ["row", "field", "value", "reason", "code"]
        assert len(rows) == 6
        assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
        assert rows[1][:3] == ["2", "name", "'=***** /* c*******"]
        assert rows[2][:3] == ["2", "national_id", "110101********1235"]
        assert BAD_NATIONAL_ID not in body.decode("utf-8-sig")
        with database_session(live_server) as session:
            events = session.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "export.rejects", AuditEvent.object_id == str(run_id)
                )
            ).scalars()
            assert [(event.actor, event.details["rows"]) for event in events] == [("manager", 5)]


class TestAccess:
    def test_an_agent_is_refused(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        log_in(page, live_server, "agent")
        for path in ("/imports", f"/imports/{imported.hostile_debtors_run_id}"):
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None
            assert response.status == 403
        response = page.request.get(
            f"{live_server.url}/imports/{imported.hostile_debtors_run_id}/rejects.csv"
        )
        assert response.status == 403

    def test_another_institutions_run_is_not_found(
        self, page: Page, live_server: LiveServer, imported: Imported
    ) -> None:
        log_in(page, live_server, "manager")
        run_id = imported.other_institution_run_id
        response = page.goto(f"{live_server.url}/imports/{run_id}")
        assert response is not None
        assert response.status == 404
        download = page.request.get(f"{live_server.url}/imports/{run_id}/rejects.csv")
        assert download.status == 404
