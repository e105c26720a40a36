"""Debtor and contact imports: zones inferred from address and phone, stated inconvenience."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.facts.rules import InconvenientPlace, StatedWindow
from recoup.ingest.rules import (
    ContactRecord,
    DebtorRecord,
    Problem,
    RowContext,
    validate_contact,
    validate_debtor,
)
from recoup.models import ContactPoint, Debtor
from recoup.models.compliance import ContactWindow, WindowKind
from tests.factories import make_institution
from tests.ingest.conftest import load, write

US = RowContext(
    region="US", currency="USD", timezone="America/New_York", now=datetime(2026, 3, 1, tzinfo=UTC)
)
CN = RowContext(
    region="CN", currency="CNY", timezone="Asia/Shanghai", now=datetime(2026, 3, 1, tzinfo=UTC)
)


def debtor(row: dict[str, str], context: RowContext = US) -> DebtorRecord:
    record = validate_debtor({"external_id": "D1", "name": "Ann Lee", **row}, context)
    assert isinstance(record, DebtorRecord), record
    return record


class TestDebtorZone:
    def test_an_empty_zone_comes_from_the_address(self) -> None:
        record = debtor({"province": "CA", "city": "Los Angeles"})
        assert (record.timezone, record.timezone_source) == ("America/Los_Angeles", "address")

    def test_a_given_zone_is_kept_as_given(self) -> None:
        record = debtor({"province": "CA", "timezone": "America/Denver"})
        assert (record.timezone, record.timezone_source) == ("America/Denver", "column")

    def test_without_an_address_the_institution_zone_is_marked_as_such(self) -> None:
        record = debtor({})
        assert (record.timezone, record.timezone_source) == ("America/New_York", "institution")

    def test_xinjiang_is_read_from_the_province(self) -> None:
        record = debtor({"province": "新疆维吾尔自治区"}, CN)
        assert (record.timezone, record.timezone_source) == ("Asia/Shanghai", "address")


class TestContactZone:
    def row(self, **extra: str) -> dict[str, str]:
        return {"external_id": "C1", "debtor_external_id": "D1", "kind": "mobile", **extra}

    def test_a_us_mobile_takes_its_area_codes_zone(self) -> None:
        record = validate_contact(self.row(value="(213) 555-0123"), US)
        assert isinstance(record, ContactRecord)
        assert (record.timezone, record.timezone_source) == ("America/Los_Angeles", "phone")

    def test_a_given_zone_wins(self) -> None:
        record = validate_contact(self.row(value="2135550123", timezone="America/Chicago"), US)
        assert isinstance(record, ContactRecord)
        assert (record.timezone, record.timezone_source) == ("America/Chicago", "column")

    def test_an_email_has_no_zone(self) -> None:
        record = validate_contact(self.row(kind="email", value="ann@example.com"), US)
        assert isinstance(record, ContactRecord)
        assert (record.timezone, record.timezone_source) == (None, None)


class TestStatedInconvenience:
    def test_times_and_places_are_read(self) -> None:
        record = debtor(
            {
                "inconvenient_times": "22:00-08:00; 12:00-13:00 sat,sun",
                "inconvenient_places": "workplace",
            }
        )
        assert record.inconvenient_times == (
            StatedWindow(22 * 60, 8 * 60),
            StatedWindow(12 * 60, 13 * 60, (5, 6)),
        )
        assert record.inconvenient_places == frozenset({InconvenientPlace.WORKPLACE})

    def test_blank_cells_say_nothing(self) -> None:
        record = debtor({"inconvenient_times": " ", "inconvenient_places": ""})
        assert (record.inconvenient_times, record.inconvenient_places) == (None, None)

    def test_unreadable_values_are_rejected_naming_the_column(self) -> None:
        problems = validate_debtor(
            {
                "external_id": "D1",
                "name": "Ann",
                "inconvenient_times": "evenings",
                "inconvenient_places": "gym",
            },
            US,
        )
        assert isinstance(problems, list)
        assert {(p.field, p.code) for p in problems if isinstance(p, Problem)} == {
            ("inconvenient_times", "bad_inconvenient"),
            ("inconvenient_places", "bad_inconvenient"),
        }


def test_import_stores_zones_with_their_source_and_the_stated_inconvenience(
    session: Session, tmp_path: Path
) -> None:
    institution = make_institution(
        session, jurisdiction="US", timezone="America/New_York", currency="USD"
    )
    debtors = write(
        tmp_path,
        "debtors.csv",
        "external_id,name,province,city,timezone,inconvenient_times,inconvenient_places\n"
        'D1,Ann Lee,CA,Los Angeles,,"22:00-08:00; 12:00-13:00 sat",workplace\n'
        "D2,Bob Roe,,,,,\n",
    )
    summary = load(session, institution, "debtors", debtors)
    assert summary.rejected == 0, summary
    contacts = write(
        tmp_path,
        "contacts.csv",
        "external_id,debtor_external_id,kind,value\nC1,D2,mobile,2135550123\n",
    )
    assert load(session, institution, "contacts", contacts).rejected == 0
    stored = {
        row.external_id: row
        for row in session.execute(
            select(Debtor).where(Debtor.institution_id == institution.id)
        ).scalars()
    }
    assert (stored["D1"].timezone, stored["D1"].timezone_source) == (
        "America/Los_Angeles",
        "address",
    )
    assert (stored["D2"].timezone, stored["D2"].timezone_source) == (
        "America/New_York",
        "institution",
    )
    phone = session.execute(
        select(ContactPoint).where(ContactPoint.institution_id == institution.id)
    ).scalar_one()
    assert (phone.timezone, phone.timezone_source) == ("America/Los_Angeles", "phone")
    assert stored["D1"].inconvenient_places == ["workplace"]
    windows = sorted(
        (w.start_minute, w.end_minute, w.weekdays)
        for w in session.execute(
            select(ContactWindow).where(
                ContactWindow.debtor_id == stored["D1"].id,
                ContactWindow.kind == WindowKind.inconvenient,
            )
        ).scalars()
    )
    assert windows == [(720, 780, [5]), (1320, 480, None)]
    # A later file with blank cells keeps what was stated; a new statement replaces it.
    again = write(
        tmp_path,
        "debtors2.csv",
        "external_id,name,province,city,inconvenient_times,inconvenient_places\n"
        "D1,Ann Lee,CA,Los Angeles,,\n",
    )
    load(session, institution, "debtors", again)
    session.expire_all()
    assert session.get(Debtor, stored["D1"].id).inconvenient_places == ["workplace"]  # type: ignore[union-attr]
    replaced = write(
        tmp_path,
        "debtors3.csv",
        "external_id,name,inconvenient_times,inconvenient_places\nD1,Ann Lee,21:00-22:00,home\n",
    )
    load(session, institution, "debtors", replaced)
    session.expire_all()
    assert session.get(Debtor, stored["D1"].id).inconvenient_places == ["home"]  # type: ignore[union-attr]
    assert [
        (w.start_minute, w.end_minute)
        for w in session.execute(
            select(ContactWindow).where(ContactWindow.debtor_id == stored["D1"].id)
        ).scalars()
    ] == [(1260, 1320)]
