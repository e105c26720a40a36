"""KPIs served from the refresh's stored facts equal the live count, for every cut and period.

The refresh stores the account facts of the month up to a day (``write_kpi_snapshots``);
``kpi_report`` and ``region_report`` re-add them and count live only the accounts touched
since. Each test computes the live answer first (no snapshot yet), stores the snapshot, asks
again and compares everything the report holds.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session

from recoup.analytics import rules, service
from recoup.identity.scoping import institution_scope
from recoup.institutions.settings import settings_of
from recoup.models import DelinquencyEvent, Institution
from recoup.models.analytics import KpiSnapshot
from recoup.models.workbench import PromiseStatus
from recoup.portfolio.rules import bucket_for
from tests.analytics.conftest import March
from tests.analytics.helpers import Outcome, account, attempt, noon, pay, promise, score, state
from tests.factories import give_to_agent, make_institution, make_model_version
from tests.identity.helpers import make_user

ALL_GROUP_BYS = [
    cuts for size in range(len(rules.CUTS) + 1) for cuts in itertools.combinations(rules.CUTS, size)
]
# The total, each cut alone, every cut at once, the nested pair (a city within its province)
# and the four cuts the dashboards ask for: each grouping path, for the checks that repeat
# over many periods (all 64 sets of cuts are compared on the month's last day and next month).
SOME_GROUP_BYS = [
    (),
    *((cut,) for cut in rules.CUTS),
    rules.CUTS,
    ("province", "city"),
    ("product", "bucket", "province", "channel"),
]


def _plain(report: object) -> Any:
    if isinstance(report, service.KpiReport):
        # Its KPIs, not the facts they come from: live and stored facts may be split otherwise
        # (a bucket's accounts in two parts) and give the same KPIs.
        plain = {
            field.name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            for field in dataclasses.fields(report)
            if field.name not in {"total_facts", "group_facts"}
            for value in [getattr(report, field.name)]
        }
        plain["total"] = dataclasses.asdict(report.total)
        plain["groups"] = [dataclasses.asdict(group) for group in report.groups]
        return plain
    return dataclasses.asdict(report)  # type: ignore[call-overload]


def _kpis(
    session: Session,
    institution: Institution,
    as_of: date,
    group_by: tuple[str, ...],
    start: date | None = None,
    end: date | None = None,
) -> Any:
    return _plain(
        service.kpi_report(
            session,
            principal=institution_scope(institution.id),
            as_of=as_of,
            start=start,
            end=end,
            group_by=group_by,
        )
    )


def _regions(session: Session, institution: Institution, as_of: date, level: str) -> Any:
    return _plain(
        service.region_report(
            session, principal=institution_scope(institution.id), as_of=as_of, level=level
        )
    )


def _served_from_snapshot(
    session: Session, institution: Institution, as_of: date, start: date, end: date | None = None
) -> bool:
    settings_ = settings_of(institution)
    clock = service.DayClock(institution.timezone, settings_.workbench.promise_grace_days)
    return (
        service.stored_account_facts(
            session,
            principal=institution_scope(institution.id),
            institution=institution,
            clock=clock,
            as_of=as_of,
            period=rules.Period(start, end or as_of),
            cuts=(),
        )
        is not None
    )


def _served_the_same(
    session: Session,
    institution: Institution,
    asked: list[tuple[date, tuple[str, ...], date | None, date | None]],
    *,
    snapshot: date,
) -> dict[Any, Any]:
    """Count each asked (as of, cuts, start, end) live, store the snapshot of ``snapshot``,
    check each is then served from it the same; return the live answers."""
    live = {key: _kpis(session, institution, *key) for key in asked}
    service.write_kpi_snapshots(session, institution=institution, as_of=snapshot)
    for key in asked:
        as_of, _group_by, start, end = key
        assert _served_from_snapshot(session, institution, as_of, start, end), key
        assert _kpis(session, institution, *key) == live[key], key
    return live


class TestTheMonthFromASnapshot:
    def test_every_cut_and_day_after_the_snapshot_reads_as_live(
        self, session: Session, march: March
    ) -> None:
        institution = march.institution
        asked = [
            (as_of, group_by)
            for as_of in (date(2026, 3, 15), date(2026, 3, 24), date(2026, 3, 31))
            for group_by in (ALL_GROUP_BYS if as_of.day == 31 else SOME_GROUP_BYS)
        ]
        live = {key: _kpis(session, institution, *key) for key in asked}
        assert service.write_kpi_snapshots(
            session, institution=institution, as_of=date(2026, 3, 14)
        )
        for key in asked:
            assert _served_from_snapshot(session, institution, key[0], date(2026, 3, 1))
            assert _kpis(session, institution, *key) == live[key], key

    def test_a_month_end_snapshot_serves_the_next_month(
        self, session: Session, march: March
    ) -> None:
        institution = march.institution
        live = {
            cuts: _kpis(session, institution, date(2026, 3, 31), cuts) for cuts in ALL_GROUP_BYS
        }
        regions = _regions(session, institution, date(2026, 3, 31), "city")
        # February's last day: a snapshot of February, and an empty one March builds on.
        assert (
            service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 2, 28))
            == 2
        )
        assert _served_from_snapshot(session, institution, date(2026, 3, 31), date(2026, 3, 1))
        for cuts, expected in live.items():
            assert _kpis(session, institution, date(2026, 3, 31), cuts) == expected, cuts
        assert _regions(session, institution, date(2026, 3, 31), "city") == regions

    def test_a_period_ending_before_the_date_and_regions(
        self, session: Session, march: March
    ) -> None:
        institution = march.institution
        # March read in April, with a payment and a cure on the first of April.
        pay(session, march.b, 1_500, date(2026, 4, 1))
        state(session, march.b, date(2026, 4, 1), days_past_due=0, balance=13_500)
        as_of = date(2026, 4, 3)
        live = _kpis(session, institution, as_of, ("bucket", "province"), end=date(2026, 3, 31))
        regions = {
            level: _regions(session, institution, date(2026, 3, 20), level)
            for level in ("province", "city")
        }
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 19))
        assert _served_from_snapshot(
            session, institution, as_of, date(2026, 3, 1), date(2026, 3, 31)
        )
        assert (
            _kpis(session, institution, as_of, ("bucket", "province"), end=date(2026, 3, 31))
            == live
        )
        for level, expected in regions.items():
            assert _regions(session, institution, date(2026, 3, 20), level) == expected

    def test_periods_with_another_start_or_end_read_as_live(
        self, session: Session, march: March
    ) -> None:
        institution = march.institution
        asked = [
            (as_of, group_by, start, end)
            for as_of, start, end in (
                (date(2026, 3, 31), date(2026, 3, 2), None),  # a day later
                (date(2026, 3, 31), date(2026, 3, 11), None),  # past A's cure and E's exit
                (date(2026, 3, 31), date(2026, 2, 20), None),  # before: A's M1 is its start
                (date(2026, 3, 31), date(2026, 3, 1), date(2026, 3, 9)),  # ends sooner
                (date(2026, 3, 12), date(2026, 3, 5), date(2026, 3, 11)),  # as of sooner
                (date(2026, 3, 31), date(2026, 3, 21), date(2026, 3, 25)),  # after its day
            )
            for group_by in SOME_GROUP_BYS
        ]
        live = {key: _kpis(session, institution, *key) for key in asked}
        regions = {
            level: _regions(session, institution, date(2026, 3, 12), level)
            for level in ("province", "city")
        }
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        for key in asked:
            as_of, _group_by, start, end = key
            assert _served_from_snapshot(session, institution, as_of, start, end), key
            assert _kpis(session, institution, *key) == live[key], key
        for level, expected in regions.items():
            assert _regions(session, institution, date(2026, 3, 12), level) == expected
        total = service.kpi_report(
            session,
            principal=institution_scope(institution.id),
            as_of=date(2026, 3, 31),
            start=date(2026, 3, 1),
            end=date(2026, 3, 19),
        ).total
        assert total.collected.amount == 2_000 + 1_000 + 4_000 + 6_000  # 2, 10, 12 and 15 Mar

    def test_periods_far_from_every_snapshot_are_counted_live(
        self, session: Session, march: March
    ) -> None:
        institution = march.institution
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        far = date(2026, 3, 20) + timedelta(days=service.MAX_SHIFT_DAYS + 1)
        assert not _served_from_snapshot(session, institution, far, far.replace(day=1))
        assert not _served_from_snapshot(
            session, institution, date(2026, 3, 31), date(2026, 1, 5), date(2026, 1, 31)
        )

    def test_a_payment_reversed_after_the_snapshots_day_reads_as_live(
        self, session: Session, march: March
    ) -> None:
        # The snapshot counted the payment (not reversed by the end of its day); the account is
        # counted again, as stored (in) and as asked (out), whenever the period asked ends.
        institution = march.institution
        paid = pay(session, march.b, 1_234, date(2026, 3, 10))
        before = _kpis(session, institution, date(2026, 3, 31), ())["total"]["collected"]
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 14))
        paid.reversed_at = noon(date(2026, 3, 20))
        session.flush()
        asked = [
            (as_of, group_by, date(2026, 3, 1), end)
            for as_of, end in ((date(2026, 3, 31), None), (date(2026, 3, 16), None))
            for group_by in ((), ("bucket",), ("product", "province"))
        ]
        served = {key: _kpis(session, institution, *key) for key in asked}
        for key in asked:
            assert _served_from_snapshot(session, institution, key[0], key[2], key[3]), key
        session.execute(delete(KpiSnapshot))
        session.flush()
        for key in asked:
            assert served[key] == _kpis(session, institution, *key), key
        collected = served[asked[0]]["total"]["collected"]
        assert (collected["amount"], collected["payments"]) == (
            before["amount"] - 1_234,
            before["payments"] - 1,
        )

    def test_a_snapshot_stored_again_is_re_added_again(
        self, session: Session, march: March
    ) -> None:
        # A request keeps the snapshot's sums by its stamp: one stored again is read anew.
        institution = march.institution
        as_of = date(2026, 3, 31)
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        before = _kpis(session, institution, as_of, ("product",))
        # Dated before the snapshot's day but recorded after it: not a touch, counted once the
        # snapshot is stored whole again.
        pay(session, march.b, 700, date(2026, 3, 10))
        assert _kpis(session, institution, as_of, ("product",)) == before
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        after = _kpis(session, institution, as_of, ("product",))
        collected = before["total"]["collected"]["amount"]
        assert after["total"]["collected"]["amount"] == collected + 700
        assert after == _kpis(session, institution, as_of, ("product",))

    def test_the_refresh_stores_the_last_whole_day_once(
        self, session: Session, march: March
    ) -> None:
        from recoup.analytics.daily import service as daily

        institution = march.institution
        now = datetime(2026, 3, 21, 2, tzinfo=UTC)  # 10:00 on 21 March in Shanghai
        daily.refresh_aggregates(session, institution=institution, as_of=date(2026, 3, 21), now=now)
        stored = session.query(KpiSnapshot).filter_by(institution_id=institution.id).one()
        assert (stored.period_start, stored.as_of) == (date(2026, 3, 1), date(2026, 3, 20))
        computed = stored.computed_at
        daily.refresh_aggregates(session, institution=institution, as_of=date(2026, 3, 21), now=now)
        session.refresh(stored)
        assert stored.computed_at == computed  # the hourly refresh leaves the day alone


class TestTouchedAccountsCountedAgain:
    """The accounts touched between the snapshot and the period asked, read once and counted
    as stored and as asked, read as live: several events in the days between (two at the same
    moment, a cure, a charge-off, one superseded), events and payments exactly at a day's
    start, a payment reversed, a segment moved, and an account in another currency."""

    def test_busy_accounts_read_as_live_on_every_period(self, session: Session) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")
        model = make_model_version(session, institution.id, version="recount-test")
        busy = account(session, institution, product="credit_card")
        for day, days_past_due, balance, status in (
            (date(2026, 2, 10), 10, 9_000, None),
            (date(2026, 2, 25), 40, 9_500, None),
            (date(2026, 3, 3), 0, 9_000, None),  # a cure, then late again the same moment
            (date(2026, 3, 3), 10, 9_000, None),
            (date(2026, 3, 5), 40, 9_200, None),
            (date(2026, 3, 22), 0, 8_000, None),  # cured after the snapshot's day
            (date(2026, 3, 24), 75, 8_100, None),
            (date(2026, 3, 27), 200, 8_100, "charged_off"),
        ):
            state(session, busy, day, days_past_due=days_past_due, balance=balance, status=status)
        state(session, busy, date(2026, 3, 23), days_past_due=90, balance=1, superseded=True)
        pay(session, busy, 500, date(2026, 2, 27))
        pay(session, busy, 700, date(2026, 3, 4))
        pay(session, busy, 900, date(2026, 3, 23)).reversed_at = noon(date(2026, 3, 26))
        pay(session, busy, 1_100, date(2026, 3, 28), status_before="charged_off")
        # Placed on the first moment of 1 March (Shanghai) and of 21 March, the day after the
        # snapshot's; cured 9.99999 days after its last late state (SQLite counts whole
        # seconds, PostgreSQL the exact span: each as its live count does).
        edges = account(session, institution, province="浙江省", city="杭州市")
        for moment, days_past_due, balance in (
            (datetime(2026, 2, 28, 16, tzinfo=UTC), 5, 4_000),
            (datetime(2026, 3, 2, 10, 0, 0, 700_000, tzinfo=UTC), 35, 4_100),
            (datetime(2026, 3, 12, 10, 0, 0, 300_000, tzinfo=UTC), 0, 4_100),
            (datetime(2026, 3, 20, 16, tzinfo=UTC), 8, 3_000),
        ):
            session.add(
                DelinquencyEvent(
                    institution_id=institution.id,
                    account_id=edges.id,
                    effective_at=moment,
                    recorded_at=moment,
                    days_past_due=days_past_due,
                    bucket=bucket_for(days_past_due),
                    status="current" if days_past_due == 0 else "delinquent",
                    balance=balance,
                    cause="import",
                )
            )
        pay(session, edges, 300, date(2026, 3, 1)).paid_at = datetime(2026, 2, 28, 16, tzinfo=UTC)
        pay(session, edges, 400, date(2026, 3, 21)).paid_at = datetime(2026, 3, 20, 16, tzinfo=UTC)
        # Moved to another segment after the snapshot's day, with a state and calls.
        mover = account(session, institution, province=None, city=None)
        state(session, mover, date(2026, 2, 1), days_past_due=0, balance=6_000)
        state(session, mover, date(2026, 3, 23), days_past_due=20, balance=6_000)
        score(session, mover, model, date(2026, 3, 15), "early")
        score(session, mover, model, date(2026, 3, 25), "late")
        attempt(session, mover, "call", "right_party", date(2026, 3, 10))
        attempt(session, mover, "sms", "message_delivered", date(2026, 3, 26))
        # Another currency: touched, but no KPI counts it.
        foreign = account(session, institution, currency="USD")
        state(session, foreign, date(2026, 3, 6), days_past_due=40, balance=5_000)
        pay(session, foreign, 800, date(2026, 3, 22))
        quiet = account(session, institution)
        state(session, quiet, date(2026, 1, 20), days_past_due=45, balance=12_000)
        session.flush()

        asked = [
            (as_of, group_by, start, end)
            for as_of, start, end in (
                (date(2026, 3, 31), date(2026, 3, 1), None),
                (date(2026, 3, 31), date(2026, 2, 20), None),  # nine days earlier
                (date(2026, 3, 31), date(2026, 3, 4), None),  # later, past the same-moment pair
                (date(2026, 3, 31), date(2026, 3, 1), date(2026, 3, 24)),
                (date(2026, 3, 21), date(2026, 3, 1), None),
                (date(2026, 3, 31), date(2026, 3, 13), date(2026, 3, 19)),
            )
            for group_by in SOME_GROUP_BYS
        ]
        live = {key: _kpis(session, institution, *key) for key in asked}
        regions = _regions(session, institution, date(2026, 3, 31), "city")
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        for key in asked:
            as_of, _group_by, start, end = key
            assert _served_from_snapshot(session, institution, as_of, start, end), key
            assert _kpis(session, institution, *key) == live[key], key
        assert _regions(session, institution, date(2026, 3, 31), "city") == regions
        total = live[(date(2026, 3, 31), (), date(2026, 3, 1), None)]["total"]
        assert total["collected"]["amount"] == 300 + 700 + 400 + 1_100
        assert total["average_days_to_cure"]["count"] == 3


def test_an_account_without_history_by_channel_alone_reads_as_live(session: Session) -> None:
    """Grouped by channel alone, a statement without a group column answers a row of zeros
    when nothing counts: neither count lists that group (found by the random histories)."""
    institution = make_institution(session, timezone="Asia/Shanghai")
    account(session, institution, product="credit_card")
    session.flush()
    live = _kpis(session, institution, date(2026, 2, 28), ("channel",))
    service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 2, 28))
    assert _served_from_snapshot(session, institution, date(2026, 2, 28), date(2026, 2, 1))
    assert _kpis(session, institution, date(2026, 2, 28), ("channel",)) == live
    assert live["groups"] == []


# --- Random histories. -------------------------------------------------------------------------

DAYS = [date(2026, 2, 20) + timedelta(days=offset) for offset in range(45)]  # to 5 April
PRODUCTS = ("credit_card", "consumer_loan")
PLACES = (("广东省", "广州市"), ("广东省", "深圳市"), ("浙江省", "杭州市"), (None, None))
OUTCOMES = ("no_answer", "right_party", "promise_made", "third_party", "message_delivered")

history = st.fixed_dictionaries(
    {
        "accounts": st.lists(
            st.fixed_dictionaries(
                {
                    "product": st.sampled_from(PRODUCTS),
                    "place": st.sampled_from(PLACES),
                    "states": st.lists(
                        st.tuples(
                            st.sampled_from(DAYS),
                            st.sampled_from((0, 0, 10, 40, 75, 200)),
                            st.integers(0, 50_000),
                            st.sampled_from((None, None, None, "settled", "charged_off")),
                        ),
                        max_size=4,
                    ),
                    "payments": st.lists(
                        st.tuples(st.sampled_from(DAYS), st.integers(1, 9_000)), max_size=3
                    ),
                    "attempts": st.lists(
                        st.tuples(
                            st.sampled_from(DAYS),
                            st.sampled_from(("call", "sms")),
                            st.sampled_from(OUTCOMES),
                            st.booleans(),
                        ),
                        max_size=3,
                    ),
                    "scores": st.lists(
                        st.tuples(st.sampled_from(DAYS), st.sampled_from(("early", "late"))),
                        max_size=2,
                        unique_by=lambda score: score[0],
                    ),
                    "promises": st.lists(
                        st.tuples(
                            st.sampled_from(DAYS),
                            st.integers(0, 10),
                            st.sampled_from(("pending", "kept", "broken")),
                        ),
                        max_size=2,
                    ),
                }
            ),
            min_size=1,
            max_size=5,
        ),
        "snapshot": st.sampled_from(DAYS[8:40]),
        "later": st.integers(0, 8),
        # A period starting this many days from the snapshot's start, and ending this many
        # days before ``as_of`` (when they fit).
        "start_shift": st.sampled_from((0, 0, -3, 2, 9, 20)),
        "end_shift": st.sampled_from((0, 0, 1, 6)),
        "group_by": st.lists(st.sampled_from(rules.CUTS), unique=True, max_size=4),
    }
)


def _write_history(session: Session, institution: Institution, drawn: dict[str, Any]) -> None:
    model = make_model_version(session, institution.id, version=f"snapshot-test-{institution.id}")
    for item in drawn["accounts"]:
        province, city = item["place"]
        made = account(session, institution, product=item["product"], province=province, city=city)
        for day, days_past_due, balance, status in item["states"]:
            state(session, made, day, days_past_due=days_past_due, balance=balance, status=status)
        for day, amount in item["payments"]:
            pay(session, made, amount, day)
        for day, channel, outcome, whole_debtor in item["attempts"]:
            attempt(session, made, channel, outcome, day, about_the_debtor=whole_debtor)
        for day, segment in item["scores"]:
            score(session, made, model, day, segment)
        for day, wait, status in item["promises"]:
            due = day + timedelta(days=wait)
            promise(
                session,
                made,
                1_000,
                promised_on=day,
                due_date=due,
                outcome=None
                if status == "pending"
                else Outcome(PromiseStatus(status), due + timedelta(days=1), paid=500),
            )
    session.flush()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=history)
def test_random_histories_read_the_same_from_the_snapshot(
    session: Session, drawn: dict[str, Any]
) -> None:
    with session.begin_nested() as nested:
        institution = make_institution(session, timezone="Asia/Shanghai")
        _write_history(session, institution, drawn)
        snapshot: date = drawn["snapshot"]
        as_of = min(snapshot + timedelta(days=drawn["later"]), DAYS[-1])
        start = snapshot.replace(day=1)
        if as_of.replace(day=1) != start:
            start = as_of.replace(day=1)  # the next month: a month-end snapshot serves it
            snapshot = start - timedelta(days=1)
        group_by = tuple(drawn["group_by"])
        end = max(as_of - timedelta(days=drawn["end_shift"]), DAYS[0])
        other_start = min(start + timedelta(days=drawn["start_shift"]), end)
        live = _kpis(session, institution, as_of, group_by)
        other = _kpis(session, institution, as_of, group_by, other_start, end)
        regions = _regions(session, institution, as_of, "city")
        service.write_kpi_snapshots(session, institution=institution, as_of=snapshot)
        assert _served_from_snapshot(session, institution, as_of, start)
        assert _kpis(session, institution, as_of, group_by) == live
        assert _served_from_snapshot(session, institution, as_of, other_start, end)
        assert _kpis(session, institution, as_of, group_by, other_start, end) == other
        assert _regions(session, institution, as_of, "city") == regions
        session.execute(delete(KpiSnapshot).where(KpiSnapshot.institution_id == institution.id))
        nested.rollback()


def _normalized(facts: dict[tuple[str | None, ...], rules.GroupFacts]) -> dict[Any, Any]:
    """Facts with their buckets and cells in one order, to compare two ways of counting."""
    found = {}
    for key, item in facts.items():
        settled = rules.settled(item)
        if settled is None:
            continue
        found[key] = dataclasses.replace(
            settled, buckets=tuple(sorted(settled.buckets, key=lambda count: count.bucket))
        )
    return found


class TestTheRefreshBringsTheSnapshotForward:
    """A day's refresh counts again only the accounts touched since the stored day."""

    def test_the_same_facts_and_agents_as_a_whole_count(
        self, session: Session, march: March
    ) -> None:
        from recoup.analytics import repository
        from recoup.analytics.daily import service as daily

        institution = march.institution
        agent = make_user(session, institution)
        for owned in (march.a, march.c, march.d):
            give_to_agent(session, owned, agent)
        reversed_soon = pay(session, march.b, 111, date(2026, 3, 3))
        reversed_late = pay(session, march.b, 222, date(2026, 3, 4))
        daily.refresh_aggregates(
            session,
            institution=institution,
            as_of=date(2026, 3, 8),
            now=datetime(2026, 3, 9, 2, tzinfo=UTC),
        )
        # Touched after the stored day: a new state, a payment after charge-off, a call, a
        # new segment.
        state(session, march.a, date(2026, 3, 12), days_past_due=40, balance=7_000)
        pay(session, march.c, 300, date(2026, 3, 14), status_before="charged_off")
        attempt(session, march.d, "call", "right_party", date(2026, 3, 15))
        # Paid before the stored day, reversed after it (out of both), and reversed after the
        # day stored next (in both: the snapshot is that day's).
        reversed_soon.reversed_at = noon(date(2026, 3, 17))
        reversed_late.reversed_at = noon(date(2026, 3, 22))
        model = make_model_version(session, institution.id, version="forward-test")
        score(session, march.e, model, date(2026, 3, 16), "late")
        session.flush()
        daily.refresh_aggregates(
            session,
            institution=institution,
            as_of=date(2026, 3, 20),
            now=datetime(2026, 3, 21, 2, tzinfo=UTC),
        )
        stored = session.query(KpiSnapshot).filter_by(institution_id=institution.id).one()
        assert stored.as_of == date(2026, 3, 20)
        forward = _normalized(rules.facts_from_json(stored.facts))
        cohort = repository.stored_agent_cohort(
            session, institution_id=institution.id, period_start=date(2026, 3, 1)
        )
        service.write_kpi_snapshots(session, institution=institution, as_of=date(2026, 3, 20))
        session.refresh(stored)
        assert forward == _normalized(rules.facts_from_json(stored.facts))
        assert cohort
        assert cohort == repository.stored_agent_cohort(
            session, institution_id=institution.id, period_start=date(2026, 3, 1)
        )


def test_a_daily_score_in_the_same_segment_touches_nothing(session: Session) -> None:
    """A cycle scores every account each day: only a move to another segment is a touch."""
    from recoup.analytics import repository

    institution = make_institution(session, timezone="Asia/Shanghai")
    model = make_model_version(session, institution.id, version="touch-test")
    same, moved, first = (account(session, institution) for _ in range(3))
    for made in (same, moved):
        score(session, made, model, date(2026, 3, 9), "early")
    score(session, same, model, date(2026, 3, 10), "early")
    score(session, moved, model, date(2026, 3, 10), "late")
    score(session, first, model, date(2026, 3, 10), "early")
    session.flush()
    touched = set(
        session.scalars(
            repository.touched_accounts(
                institution_id=institution.id,
                since=datetime(2026, 3, 10, tzinfo=UTC),
                until=datetime(2026, 3, 10, tzinfo=UTC),
                scored_after=date(2026, 3, 9),
                scored_by=date(2026, 3, 10),
            )
        )
    )
    assert touched == {moved.id, first.id}


class TestStatesReadInOnePass:
    """An account's state at the earliest start is its last live event before it, also when the
    last events before that start are superseded, alone or beside a live one at their moment."""

    def test_superseded_last_events_read_as_live(self, session: Session) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")
        # Its last event before 20 February is superseded: its state is the one before.
        alone = account(session, institution)
        state(session, alone, date(2026, 2, 5), days_past_due=10, balance=5_000)
        state(session, alone, date(2026, 2, 15), days_past_due=40, balance=5_100, superseded=True)
        pay(session, alone, 300, date(2026, 2, 25))
        # A live and a superseded event at one moment, either written first.
        live_first = account(session, institution, product="credit_card")
        state(session, live_first, date(2026, 2, 12), days_past_due=35, balance=7_000)
        state(
            session,
            live_first,
            date(2026, 2, 12),
            days_past_due=70,
            balance=7_100,
            superseded=True,
        )
        state(session, live_first, date(2026, 2, 26), days_past_due=0, balance=7_000)
        live_last = account(session, institution, province="浙江省", city="杭州市")
        state(
            session, live_last, date(2026, 2, 12), days_past_due=75, balance=4_000, superseded=True
        )
        state(session, live_last, date(2026, 2, 12), days_past_due=10, balance=4_000)
        pay(session, live_last, 200, date(2026, 2, 22))
        pay(session, live_last, 400, date(2026, 3, 6))
        # Nothing live before the start: no state then, placed between the starts.
        unknown = account(session, institution)
        state(session, unknown, date(2026, 2, 10), days_past_due=20, balance=2_000, superseded=True)
        state(session, unknown, date(2026, 2, 24), days_past_due=40, balance=2_000)
        pay(session, unknown, 500, date(2026, 3, 3))
        session.flush()

        asked = [
            (date(2026, 3, 31), group_by, start, None)
            for start in (date(2026, 2, 20), date(2026, 2, 13), date(2026, 3, 1))
            for group_by in SOME_GROUP_BYS
        ]
        live = _served_the_same(session, institution, asked, snapshot=date(2026, 3, 20))
        total = live[(date(2026, 3, 31), (), date(2026, 2, 20), None)]["total"]
        assert total["collected"]["amount"] == 300 + 200 + 400 + 500


class TestTheDaysBetweenTheStartsFromTheAggregates:
    """The attempts of the days between a period's start and the snapshot's are read from the
    daily aggregates when they hold those days whole at the cuts asked, and read as live."""

    def test_attempts_of_the_days_between_read_as_live(self, session: Session) -> None:
        from recoup.analytics.daily import service as daily

        institution = make_institution(session, timezone="Asia/Shanghai")
        model = make_model_version(session, institution.id, version="days-between-test")
        called = account(session, institution, product="credit_card")
        state(session, called, date(2026, 2, 10), days_past_due=40, balance=9_000)
        state(session, called, date(2026, 2, 27), days_past_due=70, balance=9_000)
        attempt(session, called, "call", "promise_made", date(2026, 2, 26))
        attempt(session, called, "sms", "message_delivered", date(2026, 2, 28))
        attempt(session, called, "call", "no_answer", date(2026, 3, 2))
        attempt(session, called, "call", "third_party", date(2026, 2, 27), about_the_debtor=True)
        # Scored into another segment after the snapshot's day, with calls between the starts.
        moved = account(session, institution, province="浙江省", city="杭州市")
        state(session, moved, date(2026, 2, 1), days_past_due=10, balance=3_000)
        score(session, moved, model, date(2026, 2, 20), "early")
        score(session, moved, model, date(2026, 3, 22), "late")
        attempt(session, moved, "call", "right_party", date(2026, 2, 27))
        attempt(session, moved, "sms", "message_delivered", date(2026, 3, 1))
        foreign = account(session, institution, currency="USD")
        attempt(session, foreign, "call", "right_party", date(2026, 2, 27))
        quiet = account(session, institution, province=None, city=None)
        state(session, quiet, date(2026, 1, 20), days_past_due=0, balance=1_000)
        attempt(session, quiet, "sms", "message_delivered", date(2026, 3, 2))
        attempt(session, quiet, "call", "no_answer", date(2026, 3, 12))
        session.flush()

        asked = [
            (date(2026, 3, 24), group_by, start, None)
            for start in (date(2026, 2, 26), date(2026, 3, 3))
            for group_by in (*SOME_GROUP_BYS, ("bucket", "channel"), ("province", "segment"))
        ]
        live = {key: _kpis(session, institution, *key) for key in asked}
        daily.refresh_aggregates(
            session,
            institution=institution,
            as_of=date(2026, 3, 21),
            now=datetime(2026, 3, 21, 2, tzinfo=UTC),
        )
        for first, last in (
            (date(2026, 2, 26), date(2026, 2, 28)),
            (date(2026, 3, 1), date(2026, 3, 2)),
        ):
            assert service._holds_whole_days(session, institution, first=first, last=last)
        assert not service._holds_whole_days(
            session, institution, first=date(2026, 3, 21), last=date(2026, 3, 23)
        )
        for key in asked:
            as_of, _group_by, start, end = key
            assert _served_from_snapshot(session, institution, as_of, start, end), key
            assert _kpis(session, institution, *key) == live[key], key
        total = live[(date(2026, 3, 24), (), date(2026, 2, 26), None)]["total"]
        assert total["contacts"]["attempts"] == 8  # the dollar account's call does not count

    def test_days_cut_at_another_offset_are_counted_live(self) -> None:
        # New York moves its clocks in March and November: a year of its days is not cut at
        # one offset, as the aggregates' days are.
        assert service._one_offset("Asia/Shanghai", date(2025, 3, 1), date(2026, 3, 1))
        assert not service._one_offset("America/New_York", date(2025, 3, 1), date(2026, 3, 1))
        assert service._one_offset("America/New_York", date(2025, 12, 1), date(2026, 2, 1))


class TestPaidBetweenTheStartsAlone:
    """An account touched between the starts by its payments alone counts alike in both periods
    but for them: they are added to (or taken out of) what it paid, read as live."""

    def test_payments_between_the_starts_read_as_live(self, session: Session) -> None:
        institution = make_institution(session, timezone="Asia/Shanghai")
        late = account(session, institution, product="credit_card")
        state(session, late, date(2026, 1, 25), days_past_due=40, balance=8_000)
        current = account(session, institution, province="浙江省", city="杭州市")
        state(session, current, date(2026, 1, 10), days_past_due=0, balance=5_000)
        state(session, current, date(2026, 3, 12), days_past_due=10, balance=5_000)  # placed
        written_off = account(session, institution)
        state(session, written_off, date(2026, 1, 5), days_past_due=200, balance=9_000)
        state(
            session,
            written_off,
            date(2026, 1, 31),
            days_past_due=200,
            balance=9_000,
            status="charged_off",
        )
        unknown = account(session, institution, province=None, city=None)  # no state ever
        foreign = account(session, institution, currency="USD")
        state(session, foreign, date(2026, 1, 25), days_past_due=40, balance=3_000)
        for made, amount, day in (
            (late, 700, date(2026, 2, 22)),
            (late, 300, date(2026, 3, 3)),
            (late, 900, date(2026, 3, 15)),  # in both periods
            (current, 400, date(2026, 2, 26)),
            (current, 600, date(2026, 3, 4)),
            (current, 250, date(2026, 3, 14)),  # after its placement: in both
            (unknown, 150, date(2026, 2, 27)),
            (unknown, 50, date(2026, 3, 2)),
            (foreign, 800, date(2026, 2, 23)),
            (foreign, 80, date(2026, 3, 5)),
        ):
            pay(session, made, amount, day)
        pay(session, written_off, 500, date(2026, 2, 24), status_before="charged_off")
        pay(session, written_off, 200, date(2026, 3, 5), status_before="charged_off")
        pay(session, late, 111, date(2026, 2, 25)).reversed_at = noon(date(2026, 3, 8))
        pay(session, unknown, 222, date(2026, 3, 2)).reversed_at = noon(date(2026, 3, 3))
        session.flush()

        asked = [
            (date(2026, 3, 31), group_by, start, end)
            for start, end in (
                (date(2026, 2, 20), None),  # earlier: the payments between added
                (date(2026, 3, 6), None),  # later: taken out
                (date(2026, 2, 20), date(2026, 2, 25)),  # ends before some of them
            )
            for group_by in (*SOME_GROUP_BYS, ("bucket", "segment"))
        ]
        live = _served_the_same(session, institution, asked, snapshot=date(2026, 3, 20))
        earlier = live[(date(2026, 3, 31), (), date(2026, 2, 20), None)]["total"]
        assert earlier["collected"]["amount"] == 700 + 300 + 900 + 400 + 600 + 250 + 150 + 50 + (
            500 + 200
        )
        later = live[(date(2026, 3, 31), (), date(2026, 3, 6), None)]["total"]
        assert later["collected"]["amount"] == 900 + 250
