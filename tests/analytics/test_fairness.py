"""Fair comparisons: agents and regions against what their bucket mix predicts.

The rules on hand-computed figures; the SQL on a small March 2026 at a lender in Shanghai:
two agents, one working an M1 account, one an M4 account and a charged-off one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recoup.analytics import repository, rules, service, tasks
from recoup.analytics.daily import service as daily
from recoup.analytics.rules import AgentFacts, Compared, RegionFacts, WorkedDay
from recoup.identity.scoping import institution_scope
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models import Account
from recoup.models.analytics import AggregateRefresh, DailyFact, KpiSnapshot
from recoup.models.compliance import ComplianceViolation, ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.identity import User
from recoup.models.jobs import Job
from recoup.models.workbench import PromiseStatus
from recoup.portfolio.schemas import ReversalInput
from recoup.portfolio.service import reverse_payments
from tests.analytics.helpers import Outcome, account, pay, promise, state
from tests.factories import give_to_agent, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

HOUR = 3600.0


def at(hour: float) -> float:
    return hour * HOUR


class TestCompared:
    def test_index_is_actual_over_expected(self) -> None:
        assert Compared(1.2, 1.0).index == pytest.approx(1.2)

    def test_no_index_without_an_expectation(self) -> None:
        assert Compared(1.0, 0.0).index is None
        assert Compared(None, 1.0).index is None
        assert Compared(1.0, None).index is None


class TestWorkedTime:
    def test_a_day_is_its_span_at_least_a_quarter_hour(self) -> None:
        days = [
            WorkedDay(date(2026, 3, 2), at(9), at(11)),
            WorkedDay(date(2026, 3, 3), at(9), at(9) + 60),  # one short call
        ]
        assert rules.worked_seconds(days) == 2 * 3600 + 15 * 60

    def test_no_days_no_time(self) -> None:
        assert rules.worked_seconds([]) == 0


class TestExpectedCount:
    def test_weights_each_bucket_rate_by_the_base(self) -> None:
        rates = {"M1": rules.Rate(1, 2), "M4": rules.Rate(1, 10)}
        assert rules.expected_count({"M1": 10, "M4": 10}, rates) == pytest.approx(6.0)

    def test_an_empty_bucket_adds_nothing(self) -> None:
        rates = {"M1": rules.Rate(1, 2)}
        assert rules.expected_count({"M1": 4, "M5": 0}, rates) == pytest.approx(2.0)

    def test_a_bucket_without_a_rate_makes_it_unknown(self) -> None:
        assert rules.expected_count({"M2": 3}, {"M1": rules.Rate(1, 2)}) is None


def two_agents() -> list[AgentFacts]:
    # One agent works M1 (easy), the other M4 (hard): raw RPC rates 50 % vs 10 %.
    return [
        AgentFacts(
            agent_id=1,
            attempts={"M1": 10},
            right_party={"M1": 5},
            promises_made={"M1": 2},
            promises_decided={"M1": 4},
            promises_kept={"M1": 2},
            balance={"M1": 10_000},
            collected={"M1": 1_000},
            worked_days=(WorkedDay(date(2026, 3, 2), at(9), at(11)),),
            decisions=10,
            blocks=1,
        ),
        AgentFacts(
            agent_id=2,
            attempts={"M4": 10},
            right_party={"M4": 1},
            promises_made={"M4": 1},
            balance={"M4": 20_000},
            worked_days=(WorkedDay(date(2026, 3, 2), at(9), at(9) + 300),),
            violations=1,
        ),
    ]


class TestAgentEfficiency:
    def test_rates_are_judged_against_the_bucket_mix(self) -> None:
        first, second = rules.agent_efficiency(two_agents())
        assert (first.agent_id, second.agent_id) == (2, 1)
        one = second
        # Everyone: 20 attempts in 2.25 hours.
        pace = 20 / 2.25
        assert one.worked_hours == pytest.approx(2.0)
        assert one.attempts_per_hour.actual == pytest.approx(5.0)
        assert one.attempts_per_hour.expected == pytest.approx(pace)
        assert one.attempts_per_hour.index == pytest.approx(5 / pace)
        # 50 % RPC on M1 is exactly what M1 gives: index 1, as for the M4 agent's 10 %.
        assert one.right_party_rate.index == pytest.approx(1.0)
        assert first.right_party_rate.actual == pytest.approx(0.1)
        assert first.right_party_rate.index == pytest.approx(1.0)
        assert one.promises_per_hour.expected == pytest.approx(pace * 0.2)
        assert one.kept_rate == Compared(0.5, 0.5)
        assert one.collected.actual == 1_000
        assert one.collected.expected == pytest.approx(1_000)
        assert one.block_rate == Compared(0.1, 0.1)
        assert one.violations.expected == pytest.approx(0.5)
        assert one.violations.index == 0
        assert first.violations.index == pytest.approx(2.0)
        mean = (5 / pace + 1 + 5 / pace + 1 + 1) / 5
        assert one.overall_index == pytest.approx(mean)

    def test_empty_buckets_give_no_figure_not_zero(self) -> None:
        _first, _one = rules.agent_efficiency(two_agents())
        two = _first
        # No promise of theirs fell due: no kept rate; their M4 accounts paid nothing and
        # nothing was expected of them: no index, not 0.
        assert two.kept_rate == Compared(None, None)
        assert two.collected.actual == 0
        assert two.collected.expected == 0
        assert two.collected.index is None
        assert two.block_rate == Compared(None, None)
        assert two.overall_index == pytest.approx((4.0 * 2.25 / 20 * 10 + 1 + 4.5) / 3)

    def test_an_agent_who_did_nothing(self) -> None:
        [idle] = rules.agent_efficiency([AgentFacts(agent_id=7)])
        assert idle.attempts == 0
        assert idle.attempts_per_hour == Compared(None, None)
        assert idle.overall_index is None

    def test_idle_agents_rank_last(self) -> None:
        ranked = rules.agent_efficiency([AgentFacts(agent_id=7), *two_agents()])
        assert [item.agent_id for item in ranked] == [2, 1, 7]


class TestRegionDifficulty:
    def test_a_hard_region_is_told_from_a_bad_mix(self) -> None:
        regions = [
            RegionFacts(
                region=("上海市",),
                attempts={"M1": 10},
                reached={"M1": 6},
                delinquent={"M1": 4},
                cured={"M1": 2},
            ),
            RegionFacts(
                region=("广东省",),
                attempts={"M1": 10, "M4": 10},
                reached={"M1": 4, "M4": 2},
                delinquent={"M6+": 2},
                cured={},
            ),
            RegionFacts(region=(None,)),
        ]
        hardest, easy, unknown = rules.region_difficulty(regions)
        assert hardest.region == ("广东省",)
        # 30 % reached where its mix predicts (10 × 50 % + 10 × 20 %) / 20 = 35 %.
        assert hardest.contact_rate.actual == pytest.approx(0.3)
        assert hardest.contact_rate.expected == pytest.approx(0.35)
        # Nobody cured from M6+: nothing expected, no index.
        assert hardest.cure_rate == Compared(0.0, 0.0)
        assert hardest.cure_rate.index is None
        assert hardest.ptp_rate == Compared(None, None)
        assert hardest.overall_index == pytest.approx(0.3 / 0.35)
        assert easy.contact_rate.index == pytest.approx(1.2)
        assert easy.cure_rate.index == pytest.approx(1.0)
        assert easy.overall_index == pytest.approx(1.1)
        assert unknown.region == (None,)
        assert unknown.overall_index is None


# --- In SQL. ---------------------------------------------------------------------------------


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026 at a Shanghai hour, in UTC."""
    return datetime(2026, 3, day, hour - 8, minute, tzinfo=UTC)


def made(
    session: Session,
    account: Account,
    agent: User,
    outcome: str,
    started: datetime,
    ended: datetime | None = None,
) -> None:
    session.add(
        ContactAttempt(
            institution_id=account.institution_id,
            debtor_id=account.debtor_id,
            account_id=account.id,
            channel="call",
            party="debtor",
            direction="outbound",
            status="made",
            planned_at=started,
            started_at=started,
            ended_at=ended,
            outcome=outcome,
            agent_id=agent.id,
            actor=agent.username,
        )
    )
    session.flush()


class Team:
    def __init__(self, session: Session) -> None:
        self.institution = make_institution(session, timezone="Asia/Shanghai")
        institution = self.institution
        self.lead = make_user(session, institution, role="team_lead")
        self.one = make_user(session, institution)
        self.two = make_user(session, institution)
        self.one.team_lead_id = self.lead.id
        self.easy = self._account(session, self.one, "广东省", "广州市")
        self.hard = self._account(session, self.two, "四川省", "成都市")
        self.gone = self._account(session, self.two, "四川省", "成都市")
        state(session, self.easy, date(2026, 2, 20), days_past_due=10, balance=10_000)
        pay(session, self.easy, 1_000, date(2026, 3, 10))  # partial: still M1
        state(session, self.hard, date(2026, 2, 1), days_past_due=100, balance=20_000)
        state(
            session,
            self.gone,
            date(2026, 1, 31),
            days_past_due=181,
            balance=5_000,
            status="charged_off",
        )
        pay(session, self.gone, 500, date(2026, 3, 15), status_before="charged_off")
        # Agent one: two calls over two hours on 3 March; agent two: one short call.
        made(session, self.easy, self.one, "promise_made", local(3, 10), local(3, 10, 5))
        made(session, self.easy, self.one, "no_answer", local(3, 11, 58), local(3, 12))
        made(session, self.hard, self.two, "right_party", local(4, 10), local(4, 10, 2))
        # Promises across the month's ends: made in February due in March counts in March;
        # made in March due in April does not.
        kept = promise(
            session,
            self.easy,
            1_000,
            promised_on=date(2026, 2, 26),
            due_date=date(2026, 3, 2),
            outcome=Outcome(PromiseStatus.kept, date(2026, 3, 2), paid=1_000),
        )
        later = promise(
            session, self.easy, 2_000, promised_on=date(2026, 3, 30), due_date=date(2026, 4, 2)
        )
        kept.created_by_id = later.created_by_id = self.one.id
        session.add_all(
            [
                ContactDecision(
                    institution_id=institution.id,
                    debtor_id=self.hard.debtor_id,
                    channel="call",
                    party="debtor",
                    planned_at=local(5, 22),
                    allowed=allowed,
                    pack_code="CN",
                    pack_version="1",
                    policy_name="p",
                    policy_version="1",
                    actor=self.two.username,
                )
                for allowed in (False, True)
            ]
        )
        session.add(
            ComplianceViolation(
                institution_id=institution.id,
                source="call_note",
                actor=self.two.username,
                category="threat",
                rule_id="CN-X",
                excerpt="…",
                start=0,
                end=1,
                created_at=local(6, 12),
            )
        )
        session.flush()

    def _account(self, session: Session, agent: User, province: str, city: str) -> Account:
        row = account(session, self.institution, province=province, city=city)
        give_to_agent(session, row, agent)
        session.flush()
        return row


@pytest.fixture
def team(session: Session) -> Team:
    return Team(session)


def agents(session: Session, team: Team, **kwargs: object) -> service.AgentReport:
    return service.agent_report(
        session,
        principal=institution_scope(team.institution.id),
        as_of=date(2026, 3, 31),
        **kwargs,  # type: ignore[arg-type]
    )


class TestAgentReport:
    def test_each_agent_against_the_mix(self, session: Session, team: Team) -> None:
        report = agents(session, team)
        by_id = {line.agent.id: line.figures for line in report.agents}
        one, two = by_id[team.one.id], by_id[team.two.id]
        assert (one.attempts, one.right_party_contacts, one.promises) == (2, 1, 1)
        assert one.worked_days == 1
        assert one.worked_hours == pytest.approx(2.0)
        assert two.worked_hours == pytest.approx(0.25)
        pace = 3 / 2.25
        assert one.attempts_per_hour.index == pytest.approx(1 / pace)
        assert two.attempts_per_hour.index == pytest.approx(4 / pace)
        assert one.right_party_rate.index == pytest.approx(1.0)
        assert two.right_party_rate.index == pytest.approx(1.0)
        # The February promise due 2 March counts; the one due in April does not.
        assert one.kept_rate == Compared(1.0, 1.0)
        # The partial payment is collected; the payment after charge-off is not theirs to
        # count (the account had left the portfolio).
        assert one.collected == Compared(1_000.0, 1_000.0)
        assert two.collected.actual == 0
        assert two.collected.index is None
        assert two.block_rate == Compared(0.5, 0.5)
        assert two.violations.actual == 1
        assert report.agents[0].agent.id == team.two.id

    def test_a_team_lists_its_agents_compared_with_everyone(
        self, session: Session, team: Team
    ) -> None:
        report = agents(session, team, team_lead_id=team.lead.id)
        assert [line.agent.id for line in report.agents] == [team.one.id]
        assert report.agents[0].figures.attempts_per_hour.expected == pytest.approx(3 / 2.25)

    def test_another_institutions_team_lead_is_not_found(
        self, session: Session, team: Team
    ) -> None:
        stranger = make_user(session, make_institution(session), role="team_lead")
        with pytest.raises(NotFound):
            agents(session, team, team_lead_id=stranger.id)

    def test_an_empty_month(self, session: Session, team: Team) -> None:
        report = service.agent_report(
            session,
            principal=institution_scope(team.institution.id),
            as_of=date(2026, 1, 31),
        )
        assert all(line.figures.attempts == 0 for line in report.agents)
        assert all(line.figures.overall_index is None for line in report.agents)


class TestRegionReport:
    def test_provinces_and_cities(self, session: Session, team: Team) -> None:
        report = service.region_report(
            session, principal=institution_scope(team.institution.id), as_of=date(2026, 3, 31)
        )
        regions = {item.region: item for item in report.regions}
        assert set(regions) == {("广东省",), ("四川省",)}
        sichuan = regions[("四川省",)]
        assert sichuan.attempts == 1
        assert sichuan.delinquent == 1  # the charged-off account is not in the portfolio
        assert sichuan.contact_rate.index == pytest.approx(1.0)
        cities = service.region_report(
            session,
            principal=institution_scope(team.institution.id),
            as_of=date(2026, 3, 31),
            level="city",
        )
        assert {item.region for item in cities.regions} == {
            ("广东省", "广州市"),
            ("四川省", "成都市"),
        }

    def test_an_unknown_level_names_the_field(self, session: Session, team: Team) -> None:
        with pytest.raises(ValidationFailed, match="level"):
            service.region_report(
                session,
                principal=institution_scope(team.institution.id),
                as_of=date(2026, 3, 31),
                level="street",
            )


class TestApi:
    def test_agents_and_regions(self, session: Session, team: Team) -> None:
        manager = make_user(session, team.institution, role="manager")
        with client_for(session) as client:
            response = client.get(
                "/api/v1/kpis/agents", params={"as_of": "2026-03-31"}, headers=bearer(manager)
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["period"] == {"from": "2026-03-01", "to": "2026-03-31"}
            assert {row["agent_id"] for row in body["agents"]} == {team.one.id, team.two.id}
            first = body["agents"][0]
            assert set(first["right_party_rate"]) == {"actual", "expected", "index"}
            regions = client.get(
                "/api/v1/kpis/regions",
                params={"as_of": "2026-03-31", "level": "city"},
                headers=bearer(manager),
            )
            assert regions.status_code == 200, regions.text
            assert regions.json()["regions"][0]["city"] in {"广州市", "成都市"}

    def test_refusals(self, session: Session, team: Team) -> None:
        manager = make_user(session, team.institution, role="manager")
        agent = make_user(session, team.institution, role="agent")
        with client_for(session) as client:
            response = client.get(
                "/api/v1/kpis/agents",
                params={"as_of": "2026-03-31", "from": "2026-04-01"},
                headers=bearer(manager),
            )
            assert_problem(response, 422)
            response = client.get(
                "/api/v1/kpis/agents",
                params={"as_of": "2026-03-31", "team_lead_id": 999_999},
                headers=bearer(manager),
            )
            assert response.status_code == 404
            response = client.get(
                "/api/v1/kpis/agents", params={"as_of": "2026-03-31"}, headers=bearer(agent)
            )
            assert response.status_code == 403


# --- The agents page from the daily aggregates. ------------------------------------------------


def _forget_aggregates(session: Session) -> None:
    """Drop every aggregate, so the next report is counted live."""
    for model in (DailyFact, KpiSnapshot, AggregateRefresh):
        session.execute(delete(model))
    session.flush()


def _refresh(session: Session, team: Team, through: date) -> None:
    daily.refresh_aggregates(
        session, institution=team.institution, as_of=through, first=date(2026, 1, 1)
    )
    session.flush()


class TestAgentsFromAggregates:
    """The agents page reads the refresh's daily rows and cohort: the same as counted live."""

    def test_a_month_refreshed_whole_reads_no_attempt_or_account(
        self, session: Session, team: Team, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        live = agents(session, team)
        _refresh(session, team, date(2026, 3, 31))

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("counted live although the aggregates hold the month")

        monkeypatch.setattr(repository, "agent_attempts", refuse)
        monkeypatch.setattr(repository, "agent_days", refuse)
        monkeypatch.setattr(repository, "agent_portfolios", refuse)
        assert agents(session, team) == live

    def test_days_after_the_refresh_and_accounts_touched_since(
        self, session: Session, team: Team
    ) -> None:
        # Refreshed on 5 March: the calls of 3 and 4 March are stored; the payments of 10 and
        # 15 March (a partial one, one after charge-off) and what follows are counted live.
        _refresh(session, team, date(2026, 3, 5))
        made(session, team.hard, team.two, "promise_made", local(20, 9), local(20, 9, 30))
        made(
            session,
            team.easy,
            team.one,
            "right_party",
            local(20, 23, 50),
            datetime(2026, 3, 20, 16, 10, tzinfo=UTC),
        )
        pay(session, team.hard, 2_000, date(2026, 3, 25))
        stored = agents(session, team)
        _forget_aggregates(session)
        live = agents(session, team)
        assert stored == live
        by_id = {line.agent.id: line.figures for line in live.agents}
        assert by_id[team.two.id].attempts == 2
        assert by_id[team.two.id].collected.actual == 2_000

    def test_a_team_a_past_month_and_an_empty_one(self, session: Session, team: Team) -> None:
        _refresh(session, team, date(2026, 4, 10))
        asked: list[dict[str, object]] = [
            {"team_lead_id": team.lead.id},
            {"as_of": date(2026, 3, 31)},
            {"as_of": date(2026, 1, 31)},
            {"as_of": date(2026, 4, 10)},
            # Another start: no cohort is stored for it, the accounts are counted live.
            {"as_of": date(2026, 3, 31), "start": date(2026, 3, 4)},
        ]
        stored = [_agents_as_of(session, team, **kwargs) for kwargs in asked]
        _forget_aggregates(session)
        assert stored == [_agents_as_of(session, team, **kwargs) for kwargs in asked]

    def test_a_payment_reversed_after_the_stored_day_is_taken_out(
        self, session: Session, team: Team
    ) -> None:
        # The cohort stored on 16 March counts the payments not reversed by that day's end;
        # one reversed later (before or after the refresh ran, or after the cohort is brought
        # forward to 25 March) is taken out as the live count takes it out.
        early = pay(session, team.hard, 2_000, date(2026, 3, 12))
        middle = pay(session, team.hard, 700, date(2026, 3, 13))
        late = pay(session, team.easy, 300, date(2026, 3, 14))
        pay(session, team.hard, 50, date(2026, 3, 22))
        early.reversed_at = local(18, 12)
        session.flush()
        _refresh(session, team, date(2026, 3, 16))
        middle.reversed_at = local(20, 12)
        session.flush()
        asked: list[dict[str, object]] = [
            {},
            {"as_of": date(2026, 3, 16)},
            {"as_of": date(2026, 3, 31), "end": date(2026, 3, 20)},
        ]
        first = [_agents_as_of(session, team, **kwargs) for kwargs in asked]
        # The daily refresh brings the cohort forward from 16 to 25 March.
        daily.refresh_aggregates(session, institution=team.institution, as_of=date(2026, 3, 25))
        late.reversed_at = local(28, 12)
        session.flush()
        second = [_agents_as_of(session, team, **kwargs) for kwargs in asked]
        _forget_aggregates(session)
        late.reversed_at = None
        session.flush()
        assert first == [_agents_as_of(session, team, **kwargs) for kwargs in asked]
        late.reversed_at = local(28, 12)
        session.flush()
        live = [_agents_as_of(session, team, **kwargs) for kwargs in asked]
        assert second == live
        by_id = {line.agent.id: line.figures for line in live[0].agents}
        # 10 March's 1,000 (easy) and 22 March's 50 (hard): the reversed ones are out.
        assert by_id[team.one.id].collected.actual == 1_000
        assert by_id[team.two.id].collected.actual == 50

    def test_a_reversal_dated_before_the_stored_day_asks_for_the_cohort_again(
        self, session: Session, team: Team
    ) -> None:
        # Recorded after the refresh but dated before its day's end: the stored cohort counted
        # the payment and the payments since do not see it. The reversal's refresh job (from
        # the day it was paid) stores the cohort again.
        paid = pay(session, team.hard, 2_000, date(2026, 3, 12))
        _refresh(session, team, date(2026, 3, 16))
        (outcome,) = reverse_payments(
            session,
            institution=team.institution,
            reversals=[ReversalInput(paid.external_id, local(14, 12), "bounced")],
        )
        assert outcome.status == "reversed"
        (job,) = session.execute(
            select(Job).where(Job.name == "analytics.refresh", Job.payload["first"].isnot(None))
        ).scalars()
        tasks.refresh(session, {**job.payload, "as_of": "2026-03-16"})
        session.flush()
        stored = agents(session, team)
        _forget_aggregates(session)
        assert stored == agents(session, team)

    def test_worked_time_keeps_its_microseconds(self, session: Session, team: Team) -> None:
        made(
            session,
            team.easy,
            team.one,
            "no_answer",
            local(9, 9, 0).replace(microsecond=123_457),
            local(9, 9, 1).replace(microsecond=999_999),
        )
        live = agents(session, team)
        _refresh(session, team, date(2026, 3, 31))
        assert agents(session, team) == live


def _agents_as_of(
    session: Session, team: Team, *, as_of: date = date(2026, 3, 31), **kwargs: object
) -> service.AgentReport:
    return service.agent_report(
        session,
        principal=institution_scope(team.institution.id),
        as_of=as_of,
        **kwargs,  # type: ignore[arg-type]
    )
