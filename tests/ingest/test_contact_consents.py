"""A contacts file's opt-out and consent columns become per-channel consent rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.ingest.service import data_quality_report
from recoup.models import ContactPoint, Institution
from recoup.models.contact import ContactPointConsent
from tests.ingest.conftest import DEBTORS_HEADER, load, write

HEADER = (
    "external_id,debtor_external_id,kind,value,relation,status,source,opt_out_call,"
    "opt_out_sms,opt_out_email,consent_automated,consent_recorded_at,consent_source"
)


def _rows(session: Session, external_id: str) -> set[tuple[str, str, str | None]]:
    return {
        (row.channel, row.kind, row.source)
        for row in session.scalars(
            select(ContactPointConsent)
            .join(ContactPoint, ContactPoint.id == ContactPointConsent.contact_point_id)
            .where(ContactPoint.external_id == external_id)
        )
    }


class TestContactConsents:
    def test_flags_write_rows_and_a_cleared_flag_withdraws_them(
        self, session: Session, institution: Institution, tmp_path: Path
    ) -> None:
        load(
            session,
            institution,
            "debtors",
            write(tmp_path, "d.csv", f"{DEBTORS_HEADER}\nD1,张伟,,,"),
        )
        first = write(
            tmp_path,
            "c.csv",
            f"{HEADER}\n"
            "C1,D1,mobile,13812345678,self,valid,core,true,false,false,true,"
            "2024-01-02T09:00:00+08:00,loan_contract\n"
            "C2,D1,email,a@example.com,self,valid,core,false,false,true,false,,\n",
        )
        summary = load(session, institution, "contacts", first)
        assert (summary.inserted, summary.rejected) == (2, 0)
        assert _rows(session, "C1") == {
            ("call", "opt_out", "import"),
            ("ai_call", "opt_out", "import"),
            ("call", "consent", "loan_contract"),
            ("ai_call", "consent", "loan_contract"),
            ("sms", "consent", "loan_contract"),
        }
        assert _rows(session, "C2") == {("email", "opt_out", "import")}
        again = load(session, institution, "contacts", first)
        assert (again.unchanged, again.updated) == (2, 0)
        report = data_quality_report(session, institution=institution)
        assert report.missing_fields["contact_points"]["consent_recorded_at"] == 1

        cleared = write(
            tmp_path,
            "c2.csv",
            f"{HEADER}\n"
            "C1,D1,mobile,13812345678,self,valid,core,false,false,false,true,"
            "2024-01-02T09:00:00+08:00,app_consent\n"
            "C2,D1,email,a@example.com,self,valid,core,false,false,true,false,,\n",
        )
        changed = load(session, institution, "contacts", cleared)
        assert (changed.updated, changed.unchanged) == (1, 1)
        assert _rows(session, "C1") == {
            ("call", "consent", "app_consent"),
            ("ai_call", "consent", "app_consent"),
            ("sms", "consent", "app_consent"),
        }
