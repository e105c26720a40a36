"""Zones inferred from the data: addresses, phone numbers, and which of them the gate applies."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.facts.zones import (
    ZonedFrom,
    ZoneSource,
    address_zones,
    debtor_zones,
    phone_zones_for,
)
from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from tests.factories import make_contact_point, make_debtor, make_institution

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
XINJIANG = ("Asia/Shanghai", "Asia/Urumqi")


class TestAddressZones:
    @pytest.mark.parametrize(
        ("province", "city", "zones"),
        [
            ("CA", "Los Angeles", ("America/Los_Angeles",)),
            ("California", None, ("America/Los_Angeles",)),
            ("ca", None, ("America/Los_Angeles",)),
            (None, "Los Angeles", ("America/Los_Angeles",)),
            ("HI", "Honolulu", ("Pacific/Honolulu",)),
            ("NY", "Buffalo", ("America/New_York",)),
            ("TX", None, ("America/Chicago", "America/Denver")),
            ("新疆维吾尔自治区", "乌鲁木齐市", XINJIANG),
            ("新疆", None, XINJIANG),
            ("Xinjiang Uygur Autonomous Region", None, XINJIANG),
            (None, "喀什", XINJIANG),
            ("广东省", "深圳市", ("Asia/Shanghai",)),
            ("西藏自治区", None, ("Asia/Shanghai",)),
            ("香港", None, ("Asia/Hong_Kong",)),
        ],
    )
    def test_known_places(self, province: str | None, city: str | None, zones: tuple) -> None:
        assert address_zones(province, city) == zones

    @pytest.mark.parametrize(("province", "city"), [(None, None), ("", ""), ("Atlantis", "Mu")])
    def test_unknown_places_give_none(self, province: str | None, city: str | None) -> None:
        assert address_zones(province, city) == ()


class TestPhoneZones:
    def test_us_area_code(self) -> None:
        assert phone_zones_for("2135550123", "US") == ("America/Los_Angeles",)
        assert phone_zones_for("+1 808 555 0123", "CN") == ("Pacific/Honolulu",)

    def test_cn_mobile(self) -> None:
        assert phone_zones_for("13812345678", "CN") == ("Asia/Shanghai",)

    def test_numbers_that_say_nothing(self) -> None:
        assert phone_zones_for("8005550199", "US") == ()  # toll-free: every zone
        assert phone_zones_for("12345", "US") == ()
        assert phone_zones_for("not a phone", "US") == ()


class TestDebtorZones:
    def test_the_institution_zone_yields_to_any_evidence(self) -> None:
        zones = debtor_zones(
            zone="America/New_York",
            source=ZoneSource.INSTITUTION,
            phones=[ZonedFrom("America/Los_Angeles", ZoneSource.PHONE)],
        )
        assert zones == (ZonedFrom("America/Los_Angeles", ZoneSource.PHONE),)

    def test_the_institution_zone_stands_alone(self) -> None:
        zones = debtor_zones(zone="Asia/Shanghai", source=ZoneSource.INSTITUTION)
        assert zones == (ZonedFrom("Asia/Shanghai", ZoneSource.INSTITUTION),)

    def test_every_source_is_kept_once(self) -> None:
        zones = debtor_zones(
            zone="America/New_York",
            source=ZoneSource.COLUMN,
            address=("America/Los_Angeles",),
            phones=[
                ZonedFrom("America/Los_Angeles", ZoneSource.PHONE),
                ZonedFrom("America/Chicago", ZoneSource.PHONE),
            ],
        )
        assert zones == (
            ZonedFrom("America/New_York", ZoneSource.COLUMN),
            ZonedFrom("America/Los_Angeles", ZoneSource.ADDRESS),
            ZonedFrom("America/Chicago", ZoneSource.PHONE),
        )


def _call(session: Session, debtor, at: datetime, **extra: object) -> gate_service.CheckedContact:  # type: ignore[no-untyped-def]
    values: dict[str, object] = {"channel": Channel.CALL, "party": Party.DEBTOR, "actor": "tester"}
    values.update(extra)
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        now=at,
        **values,  # type: ignore[arg-type]
    )


class TestGateAppliesEveryZone:
    def test_a_los_angeles_mobile_is_not_called_at_six_in_the_morning(
        self, session: Session
    ) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution, national_id=None)
        debtor.timezone_source = ZoneSource.INSTITUTION
        make_contact_point(session, debtor, value="2135550123")
        # 09:00 in New York is 06:00 in Los Angeles.
        early = _call(session, debtor, datetime(2026, 3, 4, 9, tzinfo=NEW_YORK))
        assert early.decision.rule_ids == ("US-HRS",)
        assert "America/Los_Angeles" in early.decision.reasons[0].message_en
        assert early.record.inputs["facts"]["timezone_sources"] == [
            {"zone": "America/Los_Angeles", "source": "phone"}
        ]
        assert early.decision.next_allowed_at == datetime(2026, 3, 4, 11, tzinfo=NEW_YORK)

    def test_a_given_zone_and_the_phone_zone_both_apply(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution, national_id=None)
        make_contact_point(session, debtor, value="2135550123")
        # 21:30 in New York is too late there though only 18:30 in Los Angeles.
        late = _call(session, debtor, datetime(2026, 3, 4, 21, 30, tzinfo=NEW_YORK))
        assert late.decision.rule_ids == ("US-HRS",)
        assert {each["source"] for each in late.record.inputs["facts"]["timezone_sources"]} == {
            "column",
            "phone",
        }

    def test_an_address_in_los_angeles_counts_without_a_zone_column(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution, national_id=None)
        debtor.timezone_source = ZoneSource.INSTITUTION
        debtor.province, debtor.city = "CA", "Los Angeles"
        session.flush()
        early = _call(session, debtor, datetime(2026, 3, 4, 10, tzinfo=NEW_YORK))
        assert early.decision.rule_ids == ("US-HRS",)
        assert early.decision.timezones == ("America/Los_Angeles",)

    def test_xinjiang_keeps_both_clocks(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        debtor.province = "新疆维吾尔自治区"
        session.flush()
        # 09:00 Beijing time is 07:00 Xinjiang time: too early on the local clock.
        early = _call(session, debtor, datetime(2025, 3, 3, 9, tzinfo=SHANGHAI))
        assert early.decision.rule_ids == ("CN-HRS",)
        assert early.decision.timezones == XINJIANG
        assert early.decision.next_allowed_at == datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)
        assert _call(
            session, debtor, datetime(2025, 3, 3, 10, 30, tzinfo=SHANGHAI)
        ).decision.allowed
        # 20:30 Beijing time is fine on both clocks; 21:00 Beijing is not.
        late = _call(session, debtor, datetime(2025, 3, 3, 21, 0, tzinfo=SHANGHAI))
        assert late.decision.rule_ids == ("CN-HRS",)

    def test_a_third_partys_number_does_not_move_the_debtor(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution, national_id=None)
        spouse = make_contact_point(session, debtor, value="2135550123")
        spouse.third_party = True
        spouse.relation = "spouse"
        session.flush()
        allowed = _call(session, debtor, datetime(2026, 3, 4, 9, tzinfo=NEW_YORK))
        assert allowed.decision.allowed
        assert allowed.decision.timezones == ("America/New_York",)


def test_a_third_party_is_called_on_their_own_numbers_clock(session: Session) -> None:
    institution = make_institution(
        session, jurisdiction="US", timezone="America/New_York", currency="USD"
    )
    debtor = make_debtor(session, institution, national_id=None)
    spouse = make_contact_point(session, debtor, value="2135550123")
    spouse.third_party = True
    spouse.relation = "spouse"
    session.flush()
    # 09:00 in New York is 06:00 for a Los Angeles number; the gate speaks of that zone.
    early = _call(
        session,
        debtor,
        datetime(2026, 3, 4, 9, tzinfo=NEW_YORK),
        party=Party.THIRD_PARTY,
        contact_point_id=spouse.id,
    )
    assert early.decision.timezones == ("America/Los_Angeles",)
    assert "US-HRS" in early.decision.rule_ids
