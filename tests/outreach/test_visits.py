"""Field visits: routes by city and district, the gate at list and result, CN-REC records."""

from __future__ import annotations

import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.contact.rules import AttemptStatus
from recoup.identity.principal import principal_for_user
from recoup.identity.scoping import institution_scope
from recoup.kit.errors import ValidationFailed
from recoup.models.contact import ContactAttempt
from recoup.outreach.service import ReportInput
from recoup.outreach.visits import places, rules, service
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for
from tests.outreach.helpers import owned_cases

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 3)
MORNING = datetime(2025, 3, 3, 8, 30, tzinfo=SHANGHAI)
PLACES = sorted(places.DISTRICTS)


class TestRoutes:
    def test_distance(self) -> None:
        beijing = places.district_point("北京市", "东城区")
        shanghai = places.district_point("上海市", "黄浦区")
        assert beijing is not None
        assert shanghai is not None
        assert 1_050_000 < rules.distance(beijing, shanghai) < 1_090_000

    @given(st.lists(st.sampled_from(PLACES), min_size=1, max_size=30), st.booleans())
    @settings(max_examples=150, deadline=None)
    def test_each_district_once_grouped_by_city_never_longer_than_naive(
        self, chosen: list[tuple[str, str]], from_start: bool
    ) -> None:
        stops = [
            rules.Stop(city, district, places.DISTRICTS[city, district])
            for city, district in chosen
        ]
        start = places.district_point("上海市", "黄浦区") if from_start else None
        route = rules.plan_route(stops, start=start)
        visited = [(d.city, d.district) for d in route.districts]
        assert len(visited) == len(set(visited))  # no district twice
        cities = [city for city, _ in visited]
        assert cities == sorted(cities, key=cities.index)  # a city's districts are together
        assert sorted(route.order) == list(range(len(stops)))  # every visit once
        assert route.metres <= rules.naive_length(stops, start=start) + 1

    def test_random_days_in_one_region_are_shorter_than_naive(self) -> None:
        generator = random.Random(7)
        region = [
            place
            for place in PLACES
            if place[0] in {"上海市", "苏州市", "无锡市", "杭州市", "南京市", "合肥市", "宁波市"}
        ]
        gains = []
        for _ in range(50):
            chosen = [generator.choice(region) for _ in range(generator.randint(5, 25))]
            stops = [rules.Stop(c, d, places.DISTRICTS[c, d]) for c, d in chosen]
            naive = rules.naive_length(stops)
            gains.append(naive - rules.plan_route(stops).metres)
        assert min(gains) >= -1
        assert sum(gains) > 0

    def test_unknown_places_come_last(self) -> None:
        stops = [
            rules.Stop("火星市", "一区", None),
            rules.Stop("上海市", "火星区", None),
            rules.Stop("上海市", "徐汇区", places.district_point("上海市", "徐汇区")),
        ]
        route = rules.plan_route(stops)
        assert [(d.city, d.district) for d in route.districts] == [
            ("上海市", "徐汇区"),
            ("上海市", "火星区"),
            ("火星市", "一区"),
        ]


SPREAD = [
    ("上海市", "浦东新区"),
    ("北京市", "海淀区"),
    ("上海市", "徐汇区"),
    ("北京市", "东城区"),
    ("上海市", "浦东新区"),
]


def _build(session: Session, institution, agent):  # type: ignore[no-untyped-def]
    return service.build_visit_list(
        session,
        principal=institution_scope(institution.id, actor="lead"),
        institution=institution,
        agent_id=agent.id,
        day=DAY,
        now=MORNING,
    )


class TestVisitLists:
    def test_routed_by_city_and_district_with_blocked_ones_last(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=6, places=SPREAD, addresses=True)
        portfolio.debtors[5].cease_contact = True
        session.flush()
        work_list, views = _build(session, institution, portfolio.agent)
        assert (work_list.allowed, work_list.blocked) == (5, 1)
        allowed = [view for view in views if view.entry.allowed]
        places_in_order = [(v.entry.city, v.entry.district) for v in allowed]
        # Each district once, each city together; the two 浦东新区 visits side by side.
        runs = [p for i, p in enumerate(places_in_order) if i == 0 or places_in_order[i - 1] != p]
        assert len(runs) == len(set(runs)) == 4
        cities = [city for city, _ in runs]
        assert cities == sorted(cities, key=cities.index)
        assert work_list.route_metres is not None
        assert work_list.route_metres < 1_200_000  # Shanghai to Beijing once, not three times
        assert not views[-1].entry.allowed
        groups = service.route_groups(institution, work_list, views)
        assert [(g.city, g.district) for g in groups] == runs
        first = groups[0].visits[0].at
        assert first is not None
        assert first.astimezone(SHANGHAI).hour == 9

    def test_no_address_is_blocked(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1, places=SPREAD)
        work_list, views = _build(session, institution, portfolio.agent)
        assert work_list.blocked == 1
        assert views[0].entry.reasons[0]["code"] == "no_contact_point"


def _report(session: Session, institution, entry_id: int, **extra):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "external_id": "v-1",
        "entry_id": entry_id,
        "happened_at": datetime(2025, 3, 3, 10, tzinfo=SHANGHAI),
        "outcome": "right_party",
        "record_ref": "rec/2025/03/03/0001.mp4",
        "notes": "met at home, promised Friday",
    }
    values.update(extra)
    return service.report_visit(
        session,
        principal=institution_scope(institution.id, actor="field-app"),
        institution=institution,
        given=ReportInput(**values),  # type: ignore[arg-type]
    )


class TestVisitResults:
    def test_cn_visits_need_their_recording(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1, places=SPREAD, addresses=True)
        _list, views = _build(session, institution, portfolio.agent)
        with pytest.raises(ValidationFailed, match="CN-REC"):
            _report(session, institution, views[0].entry.id, record_ref=None)
        report, created = _report(session, institution, views[0].entry.id)
        assert created
        assert report.record_ref == "rec/2025/03/03/0001.mp4"
        assert report.violation is False
        attempt = session.get(ContactAttempt, report.attempt_id)
        assert attempt is not None
        assert (attempt.channel, attempt.status, attempt.outcome) == (
            "visit",
            AttemptStatus.MADE,
            "right_party",
        )
        again, created = _report(session, institution, views[0].entry.id)
        assert not created
        assert again.id == report.id

    def test_a_visit_after_hours_is_a_violation(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1, places=SPREAD, addresses=True)
        _list, views = _build(session, institution, portfolio.agent)
        late = datetime(2025, 3, 3, 21, 30, tzinfo=SHANGHAI)  # the preset's visits end at 21:00
        report, _created = _report(session, institution, views[0].entry.id, happened_at=late)
        assert report.violation is True
        assert report.rule_ids
        made = session.scalars(select(ContactAttempt)).one()
        assert made.status == AttemptStatus.MADE

    def test_us_visits_need_no_recording(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        portfolio = owned_cases(session, institution, count=1, addresses=True)
        work_list, views = service.build_visit_list(
            session,
            principal=principal_for_user(portfolio.agent),
            institution=institution,
            day=DAY,
            now=datetime(2025, 3, 3, 9, tzinfo=ZoneInfo("America/New_York")),
        )
        assert work_list.allowed == 1
        report, _created = _report(
            session,
            institution,
            views[0].entry.id,
            record_ref=None,
            happened_at=datetime(2025, 3, 3, 11, tzinfo=ZoneInfo("America/New_York")),
        )
        assert report.record_ref is None

    def test_the_api(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1, places=SPREAD, addresses=True)
        _list, views = _build(session, institution, portfolio.agent)
        body = {
            "visit_id": "app-77",
            "entry_id": views[0].entry.id,
            "visited_at": "2025-03-03T10:00:00+08:00",
            "outcome": "promise_made",
            "record_ref": "rec-77",
        }
        agent = bearer(portfolio.agent)
        with client_for(session) as client:
            first = client.post("/api/v1/visits/results", json=body, headers=agent)
            assert first.status_code == 201, first.text
            assert (
                client.post("/api/v1/visits/results", json=body, headers=agent).status_code == 200
            )
            missing = {**body, "visit_id": "app-78"}
            missing.pop("record_ref")
            problem = assert_problem(
                client.post("/api/v1/visits/results", json=missing, headers=agent), 422
            )
            assert "CN-REC" in str(problem["detail"])
            busy = {**body, "visit_id": "app-79", "outcome": "busy"}
            assert_problem(client.post("/api/v1/visits/results", json=busy, headers=agent), 422)
            listed = client.get(f"/api/v1/visits/lists/{_list.id}", headers=agent)
            assert listed.status_code == 200
            assert listed.json()["entries"][0]["reported"] == ["promise_made"]


def _evening_team(session: Session, institution, **outreach: object) -> None:  # type: ignore[no-untyped-def]
    from recoup.institutions import service as institutions_service

    institutions_service.update_settings(
        session, institution=institution, changes={"outreach": outreach}, actor="test"
    )


class TestVisitsAtTheirPlannedTime:
    """Each visit is put to the gate at its own slot, in the debtor's local time."""

    def test_late_stops_past_the_visit_hours_are_dropped_naming_the_rule(
        self, session: Session
    ) -> None:
        institution = make_institution(session)  # CN consumer finance: visits end at 21:00
        _evening_team(session, institution, visit_start="19:00", visit_end="23:30")
        portfolio = owned_cases(
            session, institution, count=6, places=[("上海市", "浦东新区")], addresses=True
        )
        work_list, views = _build(session, institution, portfolio.agent)
        planned = service.planned_times(session, views)
        kept = [view for view in views if view.entry.allowed]
        dropped = [view for view in views if not view.entry.allowed]
        assert [planned[v.entry.id].astimezone(SHANGHAI).strftime("%H:%M") for v in kept] == [
            "19:00",
            "19:45",
            "20:30",
        ]
        # The stops the route would reach at 21:15 and later are outside the visit hours:
        # dropped from the route, each naming the rule, with when visits are next allowed.
        assert (work_list.allowed, work_list.blocked) == (3, 3)
        for view in dropped:
            assert [reason["rule_id"] for reason in view.entry.reasons] == ["CN-HRS"]
            assert "21:15" in view.entry.reasons[0]["message_en"]
            assert view.entry.next_allowed_at is not None
            assert view.entry.next_allowed_at.astimezone(SHANGHAI).date() > DAY
        # Planned visits come first, in route order; the dropped ones after them.
        assert [v.entry.position for v in views] == list(range(1, len(views) + 1))
        assert all(v.entry.allowed for v in views[:3])
        groups = service.route_groups(institution, work_list, views, planned=planned)
        assert [visit.at for group in groups for visit in group.visits] == [
            planned[v.entry.id] for v in kept
        ]

    def test_each_stop_is_gated_in_the_debtors_own_time(self, session: Session) -> None:
        new_york = ZoneInfo("America/New_York")
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        _evening_team(session, institution, visit_start="19:30", visit_end="23:30")
        portfolio = owned_cases(session, institution, count=4, addresses=True)
        west = portfolio.debtors[3]
        west.timezone = "America/Los_Angeles"
        for debtor in portfolio.debtors[:3]:
            debtor.timezone = "America/New_York"
        session.flush()
        work_list, views = service.build_visit_list(
            session,
            principal=institution_scope(institution.id, actor="lead"),
            institution=institution,
            agent_id=portfolio.agent.id,
            day=DAY,
            now=datetime(2025, 3, 3, 9, tzinfo=new_york),
        )
        assert (work_list.allowed, work_list.blocked) == (3, 1)
        planned = service.planned_times(session, views)
        kept = {view.debtor.id: planned[view.entry.id] for view in views if view.entry.allowed}
        # 19:30 and 20:15 in New York are within US-HRS (08:00–21:00); later a New York stop
        # is not, while the same moment in Los Angeles (three hours behind) is.
        assert west.id in kept
        # The Los Angeles stop is planned when New York's hours are over (21:00 there).
        assert kept[west.id].astimezone(new_york).strftime("%H:%M") >= "21:00"
        assert kept[west.id].astimezone(ZoneInfo("America/Los_Angeles")).hour < 21
        assert len(kept) == 3
        for view in views:
            if not view.entry.allowed:
                assert view.debtor.timezone == "America/New_York"
                assert view.entry.reasons[0]["rule_id"] == "US-HRS"

    def test_a_stop_before_the_visit_hours_moves_to_the_next_allowed_slot(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        _evening_team(session, institution, visit_start="06:30", visit_end="18:00")
        portfolio = owned_cases(
            session, institution, count=3, places=[("上海市", "徐汇区")], addresses=True
        )
        early = datetime(2025, 3, 3, 6, 0, tzinfo=SHANGHAI)
        work_list, views = service.build_visit_list(
            session,
            principal=institution_scope(institution.id, actor="lead"),
            institution=institution,
            agent_id=portfolio.agent.id,
            day=DAY,
            now=early,
        )
        # At 06:30 the gate allows no visit (they start at 08:00): the route waits until then.
        assert (work_list.allowed, work_list.blocked) == (3, 0)
        planned = service.planned_times(session, views)
        assert [planned[v.entry.id].astimezone(SHANGHAI).strftime("%H:%M") for v in views] == [
            "08:00",
            "08:45",
            "09:30",
        ]

    def test_moved_slots_are_pure(self) -> None:
        slot = datetime(2025, 3, 3, 21, 15, tzinfo=SHANGHAI)
        day_end = datetime(2025, 3, 4, 0, 0, tzinfo=SHANGHAI)
        tomorrow = datetime(2025, 3, 4, 8, 0, tzinfo=SHANGHAI)
        later = datetime(2025, 3, 3, 22, 0, tzinfo=SHANGHAI)
        assert rules.moved_slot(slot, tomorrow, day_end=day_end) is None
        assert rules.moved_slot(slot, None, day_end=day_end) is None
        assert rules.moved_slot(slot, slot, day_end=day_end) is None
        assert rules.moved_slot(slot, later, day_end=day_end) == later
