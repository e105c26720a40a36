"""Daily aggregates: what a refresh writes for the March portfolio (conftest.py), and reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from recoup.analytics import tasks
from recoup.analytics.daily import repository, rules, service
from recoup.analytics.daily.rules import Headline, Span
from recoup.identity.scoping import institution_scope
from recoup.kit import jobs
from recoup.kit.clock import start_of_day
from recoup.models import Institution, Payment
from recoup.models.analytics import AggregateRefresh, DailyFact
from recoup.models.compliance import ContactDecision
from recoup.models.jobs import Job
from recoup.portfolio.schemas import ReversalInput
from recoup.portfolio.service import reverse_payments
from tests.analytics import helpers
from tests.analytics.conftest import MARCH_END, March
from tests.analytics.test_fairness import Team
from tests.analytics.test_snapshot import _write_history, history
from tests.factories import make_institution


def totals(session: Session, march: March, metrics: tuple[str, ...], **kwargs: object) -> dict:
    rows = repository.sums(
        session,
        institution_id=march.institution.id,
        metrics=metrics,
        first=date(2026, 3, 1),
        last=MARCH_END,
        **kwargs,  # type: ignore[arg-type]
    )
    return {tuple(row[:-2]): (row[-2], row[-1]) for row in rows}


class TestRules:
    def test_a_first_refresh_fills_a_year(self) -> None:
        first, last = rules.refresh_range(date(2026, 3, 31), refreshed_through=None, grace_days=3)
        assert (last - first).days + 1 == rules.BACKFILL_DAYS

    def test_later_ones_look_back_for_late_reports(self) -> None:
        first, last = rules.refresh_range(
            date(2026, 3, 31), refreshed_through=date(2026, 3, 30), grace_days=3
        )
        assert (first, last) == (date(2026, 3, 21), date(2026, 3, 31))
        first, _ = rules.refresh_range(
            date(2026, 3, 31), refreshed_through=date(2026, 3, 1), grace_days=3
        )
        assert first == date(2026, 3, 2)

    def test_snapshots_at_month_ends_and_the_last_day(self) -> None:
        assert rules.snapshot_days(date(2026, 1, 15), date(2026, 3, 10)) == [
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 10),
        ]
        assert rules.snapshot_days(date(2026, 3, 1), date(2026, 3, 31)) == [date(2026, 3, 31)]

    def test_days_whose_count_changed(self) -> None:
        march = [date(2026, 3, day) for day in range(1, 5)]
        stored = {march[0]: 3, march[1]: 2, march[3]: 1}
        found = {march[0]: 3, march[1]: 4, march[2]: 1}
        # 2 March gained rows, 3 March has its first, 4 March lost its own.
        assert rules.changed_days(stored, found) == march[1:]
        assert rules.changed_days(stored, stored) == []

    def test_previous_span_has_the_same_length(self) -> None:
        assert rules.previous_span(Span(date(2026, 3, 1), date(2026, 3, 31))) == Span(
            date(2026, 1, 29), date(2026, 2, 28)
        )

    def test_headline_change_and_whether_it_is_good(self) -> None:
        collected = Headline("collected", "money", 120.0, 100.0)
        assert collected.change == 20
        assert collected.relative_change == pytest.approx(0.2)
        assert collected.good is True
        blocks = Headline("block_rate", "percent", 0.2, 0.1, higher_is_better=False)
        assert blocks.good is False
        assert Headline("x", "count", 1.0, None).change is None
        assert Headline("x", "count", 1.0, 0.0).relative_change is None

    def test_waterfall_stacks_buckets(self) -> None:
        steps = rules.waterfall([("M0", 5), ("M1", 0), ("M2", 3)])
        assert [(step.label, step.base, step.value) for step in steps] == [
            ("M0", 0, 5),
            ("M1", 5, 0),
            ("M2", 5, 3),
            ("total", 0, 8),
        ]

    def test_spikes(self) -> None:
        assert rules.spike(recent=4, recent_base=4, before=0, before_base=10) is None  # few
        assert rules.spike(recent=6, recent_base=10, before=3, before_base=10) == (0.6, 0.3)
        assert rules.spike(recent=6, recent_base=10, before=5, before_base=10) is None
        assert rules.spike(recent=6, recent_base=10, before=0, before_base=0) == (0.6, 0.0)

    def test_backlog(self) -> None:
        [alert] = rules.backlog_alerts(
            [rules.QueueLoad("M1", 50, 60), rules.QueueLoad("M2", 130, 60)]
        )
        assert alert.values["queue"] == "M2"
        assert alert.severity == "danger"


class TestRefresh:
    def test_the_month_adds_up_to_the_kpis(self, session: Session, march: March) -> None:
        result = service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 3, 1)
        )
        assert result.snapshots == (MARCH_END,)
        payments = totals(session, march, ("payments",), by=("state",))
        # 21,000 in 6 payments, 4,000 of them after charge-off; the dollars are left out.
        assert sum(amount for _count, amount in payments.values()) == 21_000
        assert sum(count for count, _amount in payments.values()) == 6
        assert payments[("payments", "charged_off")] == (1, 4_000)
        contacts = totals(session, march, ("attempts", "reached", "right_party", "promise_made"))
        assert {key[0]: value[0] for key, value in contacts.items()} == {
            "attempts": 5,
            "reached": 3,
            "right_party": 2,
            "promise_made": 2,
        }
        promises = totals(session, march, ("promises",), by=("state",))
        assert promises[("promises", "kept")][0] == 1  # A's, due 10 March
        assert promises[("promises", "partially_kept")] == (1, 10_000)
        portfolio = totals(session, march, ("portfolio",), by=("bucket",))
        assert portfolio == {
            ("portfolio", "M0"): (2, 9_000),
            ("portfolio", "M1"): (1, 30_000),
            ("portfolio", "M3"): (1, 20_000),
        }
        roll = totals(session, march, ("roll",), by=("bucket", "state"))
        assert roll[("roll", "M1", "M0")] == (1, 10_000)
        assert roll[("roll", "M1", "settled")] == (1, 6_000)

    def test_daily_totals_add_up_the_metric_rows(self, session: Session, march: March) -> None:
        service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 3, 1)
        )
        for metric in ("payments", "attempts", "reached", "right_party", "promise_made"):
            fine = totals(session, march, (metric,), by=("day", "product", "agent"))
            coarse = totals(session, march, (f"{metric}:total",), by=("day", "product", "agent"))
            assert {key[1:]: value for key, value in coarse.items()} == {
                key[1:]: value for key, value in fine.items()
            }
        # Aggregates written before the totals existed: the next refresh rewrites all their days.
        session.execute(
            delete(DailyFact).where(
                DailyFact.institution_id == march.institution.id, DailyFact.metric.like("%:total")
            )
        )
        service.refresh_aggregates(
            session,
            institution=march.institution,
            as_of=MARCH_END,
            now=datetime(2026, 4, 1, tzinfo=UTC),
        )
        assert totals(session, march, ("payments:total",)) == {("payments:total",): (6, 21_000)}

    def test_the_result_counts_the_rows_written(self, session: Session, march: March) -> None:
        result = service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 3, 1)
        )
        written = session.execute(
            select(func.count()).where(DailyFact.institution_id == march.institution.id)
        ).scalar_one()
        # Every stored row was written by this refresh; the count must not come back as 0.
        assert 0 < result.rows <= written

    def test_a_refresh_again_rewrites_not_adds(self, session: Session, march: March) -> None:
        for _ in range(2):
            service.refresh_aggregates(
                session, institution=march.institution, as_of=MARCH_END, first=date(2026, 3, 1)
            )
        payments = totals(session, march, ("payments",))
        assert payments[("payments",)] == (6, 21_000)
        state = session.execute(select(AggregateRefresh)).scalar_one()
        assert state.refreshed_through == MARCH_END

    def test_other_lenders_rows_stay_theirs(self, session: Session, march: March) -> None:
        service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 3, 1)
        )
        others = session.execute(
            select(func.count()).where(DailyFact.institution_id == march.other.id)
        ).scalar_one()
        assert others == 0

    def test_the_job_refreshes_from_history(self, session: Session, march: March) -> None:
        assert jobs.job_type("analytics.refresh").name == "analytics.refresh"
        tasks.refresh(session, {"institution_id": march.institution.id, "as_of": "2026-03-31"})
        state = session.execute(select(AggregateRefresh)).scalar_one()
        assert state.first_day == date(2025, 3, 31)  # a year back on a first refresh
        payments = totals(session, march, ("payments",))
        assert payments[("payments",)] == (6, 21_000)

    def test_a_reversed_payment_leaves_the_days_it_counted_in(
        self, session: Session, march: March
    ) -> None:
        service.refresh_aggregates(
            session,
            institution=march.institution,
            as_of=MARCH_END,
            now=datetime(2026, 4, 1, tzinfo=UTC),
        )
        bounced = session.execute(
            select(Payment).where(Payment.account_id == march.b.id, Payment.amount == 5_000)
        ).scalar_one()
        (outcome,) = reverse_payments(
            session,
            institution=march.institution,
            reversals=[
                ReversalInput(bounced.external_id, datetime(2026, 3, 28, tzinfo=UTC), "bounced")
            ],
        )
        assert outcome.status == "reversed"
        # The reversal asks for the aggregates again from the day the payment was made (a
        # later refresh alone would look back only a week): run that job.
        (job,) = session.execute(
            select(Job).where(Job.name == "analytics.refresh", Job.payload["first"].isnot(None))
        ).scalars()
        assert job.payload == {"institution_id": march.institution.id, "first": "2026-03-20"}
        tasks.refresh(session, {**job.payload, "as_of": "2026-03-31"})
        payments = totals(session, march, ("payments",))
        assert payments[("payments",)] == (5, 16_000)


def _facts(
    session: Session, institution_id: int, metrics: Sequence[str] | None = None
) -> list[tuple[object, ...]]:
    """The institution's stored aggregate rows (of ``metrics``), as values, in one order."""
    statement = select(
        DailyFact.day,
        DailyFact.metric,
        DailyFact.product,
        DailyFact.bucket,
        DailyFact.state,
        DailyFact.channel,
        DailyFact.agent_id,
        DailyFact.province,
        DailyFact.count,
        DailyFact.amount,
    ).where(DailyFact.institution_id == institution_id)
    if metrics is not None:
        statement = statement.where(DailyFact.metric.in_(metrics))
    return sorted((tuple(row) for row in session.execute(statement)), key=repr)


def _decide(
    session: Session, institution: Institution, debtor_id: int, moment: datetime, *, allowed: bool
) -> None:
    session.add(
        ContactDecision(
            institution_id=institution.id,
            debtor_id=debtor_id,
            channel="call",
            party="debtor",
            planned_at=moment,
            allowed=allowed,
            pack_code="CN",
            pack_version="1",
            policy_name="p",
            policy_version="1",
            actor="cycle",
        )
    )
    session.flush()


class TestDecisionsOfADailyRefresh:
    """A daily refresh rewrites the gate's decisions of the days that gained some, only."""

    APRIL_1 = date(2026, 4, 1)

    def _daily(self, session: Session, institution: Institution, as_of: date) -> date:
        """Refresh as the daily cycle does on ``as_of``; return the first day rewritten."""
        return service.refresh_aggregates(
            session,
            institution=institution,
            as_of=as_of,
            now=start_of_day(as_of, institution.timezone) + timedelta(hours=6),
        ).first

    def _whole(
        self, session: Session, institution: Institution, first: date, as_of: date
    ) -> list[Any]:
        """What a refresh rewriting every day of the same look-back stores."""
        with session.begin_nested() as nested:
            service.refresh_aggregates(session, institution=institution, as_of=as_of, first=first)
            rows = _facts(session, institution.id)
            nested.rollback()
        return rows

    @pytest.fixture
    def written(self, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        """The ``days`` each ``write_decisions`` call was given (``None``: every day)."""
        calls: list[Any] = []
        write = repository.write_decisions

        def spy(*args: Any, **kwargs: Any) -> int:
            calls.append(kwargs.get("days"))
            return write(*args, **kwargs)

        monkeypatch.setattr(repository, "write_decisions", spy)
        return calls

    def test_only_new_and_late_decisions_days_are_rewritten(
        self, session: Session, march: March, written: list[Any]
    ) -> None:
        institution, debtor = march.institution, march.a.debtor_id
        for day in (date(2026, 3, 25), date(2026, 3, 28), MARCH_END):
            _decide(session, institution, debtor, helpers.noon(day), allowed=True)
        self._daily(session, institution, MARCH_END)
        assert written == [None]  # a first refresh: every day
        # Today's decisions, and one planned on 28 March recorded only now.
        _decide(session, institution, debtor, helpers.noon(self.APRIL_1), allowed=True)
        _decide(session, institution, debtor, helpers.noon(self.APRIL_1), allowed=False)
        late = helpers.noon(date(2026, 3, 28))
        _decide(session, institution, march.b.debtor_id, late, allowed=False)
        first = self._daily(session, institution, self.APRIL_1)
        assert written[-1] == [date(2026, 3, 28), self.APRIL_1]
        stored = _facts(session, institution.id)
        assert stored == self._whole(session, institution, first, self.APRIL_1)
        decisions = totals(session, march, ("decisions",), by=("day", "state"))
        assert decisions[("decisions", date(2026, 3, 28), "blocked")][0] == 1
        assert decisions[("decisions", date(2026, 3, 28), "allowed")][0] == 1

    def test_a_day_without_new_decisions_is_kept_as_stored(
        self, session: Session, march: March, written: list[Any]
    ) -> None:
        institution = march.institution
        _decide(session, institution, march.a.debtor_id, helpers.noon(MARCH_END), allowed=True)
        self._daily(session, institution, MARCH_END)
        before = _facts(session, institution.id)
        self._daily(session, institution, MARCH_END)
        assert written == [None]  # the first refresh's; the second wrote none
        assert _facts(session, institution.id) == before

    def test_a_day_that_lost_its_rows_is_written_again(
        self, session: Session, march: March, written: list[Any]
    ) -> None:
        institution = march.institution
        _decide(
            session, institution, march.a.debtor_id, helpers.noon(date(2026, 3, 27)), allowed=True
        )
        self._daily(session, institution, MARCH_END)
        expected = _facts(session, institution.id)
        session.execute(
            delete(DailyFact).where(
                DailyFact.institution_id == institution.id, DailyFact.metric == "decisions"
            )
        )
        self._daily(session, institution, MARCH_END)
        assert written[-1] == [date(2026, 3, 27)]
        assert _facts(session, institution.id) == expected

    def test_a_daylight_saving_change_in_the_look_back_rewrites_every_day(
        self, session: Session, written: list[Any]
    ) -> None:
        # Berlin moves from UTC+1 to UTC+2 on 29 March 2026: a day's bounds moved with it.
        institution = make_institution(session, timezone="Europe/Berlin", currency="EUR")
        debtor = helpers.account(session, institution, currency="EUR").debtor_id
        _decide(session, institution, debtor, helpers.noon(date(2026, 3, 27)), allowed=True)
        self._daily(session, institution, date(2026, 3, 27))
        _decide(session, institution, debtor, helpers.noon(self.APRIL_1), allowed=True)
        first = self._daily(session, institution, self.APRIL_1)
        assert written == [None, None]
        whole = self._whole(session, institution, first, self.APRIL_1)
        assert _facts(session, institution.id) == whole


class TestHome:
    def test_headlines_and_charts(self, session: Session, march: March) -> None:
        service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 1, 1)
        )
        home = service.manager_home(
            session,
            principal=institution_scope(march.institution.id),
            span=Span(date(2026, 3, 1), MARCH_END),
        )
        headline = {item.key: item for item in home.headlines}
        assert headline["collected"].current == 21_000
        assert headline["delinquent_balance"].current == 50_000  # C in M1, B in M3
        assert headline["contact_rate"].current == pytest.approx(0.6)
        assert headline["kept_rate"].current == pytest.approx(0.5)
        # February's snapshot: A (M1), B (M2) and E (M1) were delinquent.
        assert headline["delinquent_balance"].previous == 36_000
        assert home.waterfall[-1].value == 59_000
        m1 = next(row for row in home.roll if row.from_bucket == "M1")
        assert m1.to == {**dict.fromkeys(home.roll_states, 0), "M0": 1, "settled": 1}
        march_point = next(point for point in home.trend if point.month == "2026-03")
        assert march_point.collected == 21_000
        assert march_point.delinquent_at_start == 36_000
        assert home.work == []

    def test_an_unknown_team_is_not_found(self, session: Session, march: March) -> None:
        from recoup.kit.errors import NotFound

        with pytest.raises(NotFound):
            service.manager_home(
                session,
                principal=institution_scope(march.institution.id),
                span=Span(date(2026, 3, 1), MARCH_END),
                team_lead_id=123_456,
            )


# --- Month ends in one pass. -------------------------------------------------------------------

MONTH_ENDS = [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 3)]


def _month_end_rows(session: Session, institution_id: int) -> list[tuple[object, ...]]:
    return _facts(session, institution_id, repository.SNAPSHOT_METRICS)


def _both_ways(session: Session, institution: Institution) -> tuple[list[Any], list[Any]]:
    """The month ends written day by day, then in one pass (and by state look-ups: the same)."""
    scope = service._scope(institution, MONTH_ENDS[-1])

    def end_of(day: date) -> datetime:
        return start_of_day(day + timedelta(days=1), institution.timezone)

    for day in MONTH_ENDS:
        repository.write_portfolio(session, scope, day=day, cutoff=end_of(day))
        repository.write_roll(
            session, scope, day=day, since=rules.month_start(day) - timedelta(days=1)
        )
    by_day = _month_end_rows(session, institution.id)
    session.execute(delete(DailyFact).where(DailyFact.institution_id == institution.id))
    repository.write_month_ends(
        session,
        scope,
        days=MONTH_ENDS,
        cutoffs=[end_of(day) for day in (date(2026, 1, 31), *MONTH_ENDS)],
    )
    in_one_pass = _month_end_rows(session, institution.id)
    session.execute(delete(DailyFact).where(DailyFact.institution_id == institution.id))
    repository.write_snapshots(
        session,
        scope,
        days=MONTH_ENDS,
        since=[rules.month_start(day) - timedelta(days=1) for day in MONTH_ENDS],
        cutoff=end_of,
    )
    assert _month_end_rows(session, institution.id) == by_day
    return by_day, in_one_pass


class TestMonthEndsInOnePass:
    def test_the_march_portfolio(self, session: Session, march: March) -> None:
        by_day, in_one_pass = _both_ways(session, march.institution)
        assert by_day
        assert in_one_pass == by_day

    def test_accounts_with_owners_and_exits(self, session: Session) -> None:
        team = Team(session)
        by_day, in_one_pass = _both_ways(session, team.institution)
        assert {row[6] for row in by_day} >= {team.one.id, team.two.id}  # agent_id
        assert in_one_pass == by_day

    def test_a_first_refresh_writes_them_in_one_pass(
        self, session: Session, march: March, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(*_args: object, **_kwargs: object) -> int:
            raise AssertionError("month ends written day by day")

        monkeypatch.setattr(repository, "write_portfolio", refuse)
        result = service.refresh_aggregates(
            session, institution=march.institution, as_of=MARCH_END, first=date(2026, 1, 1)
        )
        assert result.snapshots == (date(2026, 1, 31), date(2026, 2, 28), MARCH_END)

    def test_a_daily_refresh_writes_its_days_from_one_look_up_each(
        self, session: Session, march: March, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        institution = march.institution
        scope = service._scope(institution, MARCH_END)
        days = [date(2026, 2, 28), date(2026, 3, 5)]
        for day in days:
            cutoff = start_of_day(day + timedelta(days=1), institution.timezone)
            repository.write_portfolio(session, scope, day=day, cutoff=cutoff)
            repository.write_roll(
                session, scope, day=day, since=rules.month_start(day) - timedelta(days=1)
            )
        by_day = _month_end_rows(session, institution.id)
        assert {row[1] for row in by_day} == {"portfolio", "roll"}
        session.execute(delete(DailyFact).where(DailyFact.institution_id == institution.id))

        def refuse(*_args: object, **_kwargs: object) -> int:
            raise AssertionError("snapshot days written statement by statement")

        monkeypatch.setattr(repository, "write_portfolio", refuse)
        monkeypatch.setattr(repository, "write_roll", refuse)
        result = service.refresh_aggregates(
            session, institution=institution, as_of=days[-1], first=date(2026, 2, 25)
        )
        assert result.snapshots == tuple(days)
        assert _month_end_rows(session, institution.id) == by_day


class TestSnapshotDaysLookedUpFromTheLatest:
    """A state at an earlier day end is looked up again only for accounts changed since."""

    def test_changes_between_the_day_ends(self, session: Session) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")

        def one(*states: tuple[date, int, int, str | None, bool]) -> None:
            made = helpers.account(session, institution)
            for day, days_past_due, balance, status, superseded in states:
                helpers.state(
                    session,
                    made,
                    day,
                    days_past_due=days_past_due,
                    balance=balance,
                    status=status,
                    superseded=superseded,
                )

        jan, feb, mar = date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 3)
        one((jan, 10, 1_000, None, False))  # one state throughout
        one((jan, 10, 1_100, None, False), (mar, 40, 1_200, None, False))  # moved after 28 Feb
        one((jan, 10, 1_300, None, False), (feb, 40, 1_400, None, False))  # before it
        one((feb, 40, 1_500, None, False), (mar, 0, 0, "settled", False))  # none at 31 Jan
        one((mar, 10, 1_600, None, False))  # first seen after both month ends
        # A later state superseded: the earlier one holds at every day end.
        one((jan, 40, 1_700, None, False), (mar, 10, 1_800, None, True))
        one((jan, 75, 1_900, None, False), (feb, 0, 0, "charged_off", False))
        # Two states on one day: the last recorded holds.
        one((feb, 10, 2_000, None, False), (feb, 40, 2_100, None, False))
        _by_day_and_by_look_ups(session, institution, [date(2026, 2, 28), date(2026, 3, 5)])


def _by_day_and_by_look_ups(session: Session, institution: Institution, days: list[date]) -> None:
    scope = service._scope(institution, days[-1])

    def end_of(day: date) -> datetime:
        return start_of_day(day + timedelta(days=1), institution.timezone)

    since = [rules.month_start(day) - timedelta(days=1) for day in days]
    for day, start in zip(days, since, strict=True):
        repository.write_portfolio(session, scope, day=day, cutoff=end_of(day))
        repository.write_roll(session, scope, day=day, since=start)
    by_day = _month_end_rows(session, institution.id)
    assert {row[1] for row in by_day} == {"portfolio", "roll"}
    session.execute(delete(DailyFact).where(DailyFact.institution_id == institution.id))
    repository.write_snapshots(session, scope, days=days, since=since, cutoff=end_of)
    assert _month_end_rows(session, institution.id) == by_day


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=history)
def test_random_histories_give_the_same_month_ends(session: Session, drawn: dict[str, Any]) -> None:
    with session.begin_nested() as nested:
        institution = make_institution(session, timezone="Asia/Shanghai")
        _write_history(session, institution, drawn)
        by_day, in_one_pass = _both_ways(session, institution)
        assert in_one_pass == by_day
        nested.rollback()
