"""The demo's recent past comes from the simulator and agrees with today's portfolio."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import compile_gate
from recoup.compliance.rulepack import load_pack
from recoup.demo import generator, history
from recoup.demo.generator import CHINA_UTC_OFFSET_HOURS, Portfolio
from recoup.demo.service import seed_demo
from recoup.models.cases import Case
from recoup.models.cases import CaseEvent as CaseEventRow
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.identity import User
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan
from recoup.models.workbench import Promise
from recoup.plans.service import reconcile_plans
from recoup.scoring.rules import DEFAULT_CONTACT_COSTS
from recoup.simulation.params import with_overrides
from recoup.strategy.presets import preset_text
from recoup.strategy.rules import compile_strategy
from recoup.workbench.service import reconcile_promises

AS_OF = date(2026, 6, 30)
SHANGHAI = ZoneInfo("Asia/Shanghai")
WINDOW_START = np.datetime64(AS_OF, "D") - np.timedelta64(history.HISTORY_DAYS, "D")
FLAVOURS = {"consumer_finance": generator.CONSUMER_FINANCE, "bank": generator.COMMERCIAL_BANK}


@cache
def lived(flavour: str, seed: int = 7) -> tuple[Portfolio, Portfolio, dict[str, int]]:
    """The generated portfolio and the same after its simulated past (cached per flavour)."""
    spec = FLAVOURS[flavour]
    before = generator.generate_portfolio(
        accounts=1500, seed=seed, flavour=spec, as_of=AS_OF, current_spells=True
    )
    setting = history.Setting(
        compiled=compile_strategy(preset_text(spec.name)),
        gate=compile_gate(load_pack("CN")),
        costs=dict(DEFAULT_CONTACT_COSTS),
        timezone="Asia/Shanghai",
    )
    after, extra = history.simulate_history(before, seed=seed, setting=setting)
    return before, after, extra


def local(instants: np.ndarray) -> np.ndarray:
    return instants + np.timedelta64(CHINA_UTC_OFFSET_HOURS * 3600, "s")


def balance(portfolio: Portfolio) -> np.ndarray:
    accounts = portfolio.accounts
    return accounts["principal"] + accounts["interest"] + accounts["fees"] + accounts["penalty"]


def window_payments(portfolio: Portfolio, rows: np.ndarray) -> np.ndarray:
    payments = portfolio.payments
    inside = local(payments["paid_at"]).astype("datetime64[D]") >= WINDOW_START
    return np.bincount(
        payments["account_index"][inside],
        weights=payments["amount"][inside],
        minlength=len(portfolio.accounts),
    )[rows].astype(np.int64)


def seeded_institution(session: Session) -> Institution:
    """Seed the demo (1,200 accounts, seed 5) and return its consumer lender."""
    seed_demo(session, accounts=1200, seed=5, as_of=AS_OF)
    return session.scalars(select(Institution).where(Institution.code == "DEMO-CF")).one()


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestMoney:
    def test_todays_balance_is_the_opening_balance_less_the_simulated_payments(
        self, flavour: str
    ) -> None:
        before, after, _ = lived(flavour)
        rows = np.flatnonzero(history.simulated_accounts(before))
        paid = window_payments(after, rows)
        assert paid.sum() > 0
        assert (balance(after)[rows] == balance(before)[rows] - paid).all()
        # Each payment's parts add up to it and were owed.
        payments = after.payments
        parts = sum(
            payments[f"applied_{part}"] for part in ("penalty", "fees", "interest", "principal")
        )
        assert (parts == payments["amount"]).all()
        assert (payments["amount"] > 0).all()
        assert (payments["account_index"] < len(after.accounts)).all()

    def test_paid_off_accounts_are_closed_and_the_rest_keep_their_days_past_due(
        self, flavour: str
    ) -> None:
        before, after, _ = lived(flavour)
        rows = np.flatnonzero(history.simulated_accounts(before))
        accounts = after.accounts
        paid_off = balance(after)[rows] == 0
        assert paid_off.any()
        assert (accounts["status"][rows[paid_off]] == "closed").all()
        assert (accounts["days_past_due"][rows[paid_off]] == 0).all()
        assert (accounts["bucket"][rows[paid_off]] == "M0").all()
        owing = rows[~paid_off]
        assert (accounts["days_past_due"][owing] == before.accounts["days_past_due"][owing]).all()
        assert (accounts["status"][owing] != "closed").all()
        # The latest bucket change of a paid-off account says so, on the day it was paid off.
        events = after.delinquency_events
        last = {}
        for account, status, at in zip(
            events["account_index"].tolist(),
            events["status"].tolist(),
            events["effective_at"].tolist(),
            strict=True,
        ):
            last[account] = (status, at)
        assert all(last[account][0] == "closed" for account in rows[paid_off].tolist())
        assert all(last[account][0] != "closed" for account in owing.tolist())

    def test_every_kept_promise_was_paid_by_its_due_date_and_grace(self, flavour: str) -> None:
        _, after, _ = lived(flavour)
        promises, payments = after.promises, after.payments
        recent = promises["promised_on"] >= WINDOW_START
        statuses = Counter(promises["status"][recent].tolist())
        assert statuses["kept"] > 0
        assert statuses["broken"] > 0
        grace = np.timedelta64(generator.PROMISE_GRACE_DAYS, "D")
        paid_day = local(payments["paid_at"]).astype("datetime64[D]")
        for row in np.flatnonzero(recent & (promises["status"] == "kept")).tolist():
            account = promises["account_index"][row]
            window = (
                (payments["account_index"] == account)
                & (paid_day >= promises["promised_on"][row])
                & (paid_day <= promises["due_date"][row] + grace)
            )
            assert payments["amount"][window].sum() >= promises["amount"][row]

    def test_promises_still_open_fall_due_from_the_seeding_date_less_the_grace(
        self, flavour: str
    ) -> None:
        before, after, _ = lived(flavour)
        promises = after.promises
        lived_accounts = history.simulated_accounts(before)[promises["account_index"]]
        pending = (promises["status"] == "pending") & lived_accounts
        grace = np.timedelta64(generator.PROMISE_GRACE_DAYS, "D")
        last_day = np.datetime64(AS_OF, "D") - np.timedelta64(1, "D")
        assert (promises["due_date"][pending] + grace >= last_day).all()
        settled = (
            (promises["promised_on"] >= WINDOW_START)
            & lived_accounts
            & (promises["status"] != "pending")
        )
        assert (promises["due_date"][settled] + grace <= last_day).all()


class TestContacts:
    def test_no_contact_outside_the_debtors_contact_hours(self, flavour: str) -> None:
        _, after, _ = lived(flavour)
        contacts = after.contact_attempts
        assert len(contacts) > 0
        at = local(contacts["started_at"])
        hour = (at - at.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64) / 60
        # CN-HRS: no collection from 22:00 to 08:00 (agents call 09:30–20:30).
        assert (hour >= 8).all()
        assert (hour < 21).all()
        day = at.astype("datetime64[D]")
        assert (day >= WINDOW_START).all()
        assert (day < np.datetime64(AS_OF, "D")).all()

    def test_a_debtor_on_xinjiang_time_is_contacted_in_their_own_day(self, flavour: str) -> None:
        _, after, _ = lived(flavour)
        contacts = after.contact_attempts
        provinces = after.debtors["province"][contacts["debtor_index"]]
        west = np.asarray([str(name).startswith("新疆") for name in provinces.tolist()])
        calls = west & np.isin(contacts["channel"], ["call", "visit"])
        assert calls.sum() > 0
        at = local(contacts["started_at"])
        hour = (at - at.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64) / 60
        # Beijing time: Xinjiang's 09:30 is 11:30 here, its 08:00 (CN-HRS) 10:00.
        assert (hour[calls] >= 11.5).all()
        assert (hour[west] >= 10.0).all()
        assert (hour[~west & np.isin(contacts["channel"], ["call"])] < 11.5).any()

    def test_daily_contacts_per_debtor_stay_within_the_caps(self, flavour: str) -> None:
        _, after, _ = lived(flavour)
        contacts = after.contact_attempts
        day = local(contacts["started_at"]).astype("datetime64[D]").astype(np.int64)
        voice = np.isin(contacts["channel"], ["call", "ai_call"])
        effective = Counter(
            zip(
                contacts["debtor_index"][voice & contacts["effective"]].tolist(),
                day[voice & contacts["effective"]].tolist(),
                strict=True,
            )
        )
        # CN-FREQ-V: at most three effective voice calls per debtor a day.
        assert max(effective.values()) <= 3
        calls = Counter(
            zip(contacts["debtor_index"][voice].tolist(), day[voice].tolist(), strict=True)
        )
        assert max(calls.values()) <= 3

    def test_nobody_is_contacted_after_disputing_or_asking_to_stop(self, flavour: str) -> None:
        before, after, _ = lived(flavour)
        contacts = after.contact_attempts
        flagged = np.zeros(len(before.debtors), dtype=bool)
        for flag in ("disputed", "cease_contact", "deceased", "attorney_represented"):
            flagged |= before.debtors[flag]
        assert not flagged[contacts["debtor_index"]].any()
        # After a stop request the debtor hears nothing more.
        stopped = contacts["outcome"] == "refused_contact"
        for debtor, at in zip(
            contacts["debtor_index"][stopped].tolist(),
            contacts["started_at"][stopped].tolist(),
            strict=True,
        ):
            later = (contacts["debtor_index"] == debtor) & (contacts["started_at"] > at)
            assert not later.any()

    def test_contact_and_promise_rates_are_in_the_fields_ranges(self) -> None:
        _, after, _ = lived("consumer_finance")
        contacts = after.contact_attempts
        calls = contacts["channel"] == "call"
        right_party = np.isin(
            contacts["outcome"],
            ["right_party", "promise_made", "dispute", "hardship", "refused_contact"],
        )
        rate = right_party[calls].mean()
        assert 0.1 < rate < 0.6
        promises = after.promises
        recent = promises["promised_on"] >= WINDOW_START
        kept = (promises["status"][recent] == "kept").sum()
        due = np.isin(promises["status"][recent], ["kept", "broken", "partially_kept"]).sum()
        assert 0.3 < kept / due < 0.8


class TestDeterminism:
    def test_the_same_seed_gives_the_same_history_and_another_another(self) -> None:
        _, first, _ = lived("bank", seed=3)
        lived.cache_clear()
        _, again, _ = lived("bank", seed=3)
        _, other, _ = lived("bank", seed=4)
        for name in ("payments", "promises", "contact_attempts", "payment_plans", "accounts"):
            one, two = getattr(first, name).columns, getattr(again, name).columns
            assert one.keys() == two.keys()
            for column in one:
                assert one[column].astype(str).tolist() == two[column].astype(str).tolist()
        assert len(other.contact_attempts) != len(first.contact_attempts)


class TestTheProductAgrees:
    def test_reconciling_promises_and_plans_on_the_seeding_date_changes_nothing(
        self, session: Session
    ) -> None:
        institution = seeded_institution(session)
        promises = reconcile_promises(session, institution=institution, as_of=AS_OF, actor="test")
        # What is pending is still inside its grace: nothing is kept or broken anew.
        assert promises.examined > 0
        assert (promises.kept, promises.partially_kept, promises.broken) == (0, 0, 0)
        simulated = session.scalars(
            select(PaymentPlan.id).where(
                PaymentPlan.institution_id == institution.id,
                PaymentPlan.created_by == "demo-seed",
                PaymentPlan.status == "active",
            )
        ).all()
        assert simulated
        plans = reconcile_plans(session, institution=institution, as_of=AS_OF, actor="test")
        # The simulated plans' instalments were paid when due (the demo's own three are new).
        assert plans.broken == 0
        assert plans.late == 0
        assert plans.on_track >= len(simulated)
        attempts = session.scalar(
            select(func.count())
            .select_from(ContactAttempt)
            .where(
                ContactAttempt.institution_id == institution.id,
                ContactAttempt.status == "made",
            )
        )
        assert attempts is not None
        assert attempts > 100
        # Agents made the calls and took the promises on them (their pages count both).
        unowned_calls = session.scalar(
            select(func.count())
            .select_from(ContactAttempt)
            .where(
                ContactAttempt.institution_id == institution.id,
                ContactAttempt.channel == "call",
                ContactAttempt.agent_id.is_(None),
                ContactAttempt.started_at < datetime.combine(AS_OF, time(), tzinfo=SHANGHAI),
            )
        )
        assert unowned_calls == 0
        agents_promises = session.scalar(
            select(func.count())
            .select_from(Promise)
            .where(
                Promise.institution_id == institution.id,
                Promise.channel == "call",
                Promise.created_by_id.is_not(None),
            )
        )
        assert agents_promises


class TestTheGateAndComplaintsOfThePast:
    def test_every_simulated_contact_holds_the_gate_decision_that_allowed_it(
        self, session: Session
    ) -> None:
        institution = seeded_institution(session)
        gate = gate_service.gate_for(session, institution=institution)
        rows = session.execute(
            select(ContactAttempt, ContactDecision)
            .join(ContactDecision, ContactDecision.id == ContactAttempt.decision_id, isouter=True)
            .where(
                ContactAttempt.institution_id == institution.id,
                ContactAttempt.actor == "demo-seed",
                # The simulated past (the showcase asks the gate today and for tomorrow).
                ContactAttempt.planned_at < datetime.combine(AS_OF, time(), tzinfo=SHANGHAI),
            )
        ).all()
        assert len(rows) > 100
        for attempt, decision in rows:
            assert decision is not None, f"contact {attempt.id} has no gate decision"
            assert decision.allowed
            assert (decision.rule_ids, decision.reasons) == ([], [])
            assert (decision.debtor_id, decision.account_id, decision.contact_point_id) == (
                attempt.debtor_id,
                attempt.account_id,
                attempt.contact_point_id,
            )
            assert (decision.channel, decision.party) == (attempt.channel, attempt.party)
            assert decision.planned_at == attempt.planned_at
            # Decided when the contact was planned, not when the demo was written.
            assert decision.created_at == attempt.planned_at
            assert (decision.pack_code, decision.pack_version) == (
                gate.pack.code,
                gate.pack.version,
            )
            assert (decision.policy_name, decision.policy_version) == (
                gate.policy.name,
                gate.policy.version,
            )
            assert decision.timezones == [str(institution.timezone)]
            assert decision.inputs["automated"] == (attempt.channel == "ai_call")
        # The decision log shows them under the institution, one per contact.
        assert len({decision.id for _, decision in rows}) == len(rows)

    def test_simulated_complaints_are_recorded_on_the_debtors_cases(
        self, session: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Complaints are rare (well under 1 ‰ of contacts): raise their chance for the test.
        monkeypatch.setattr(
            history, "default_params", lambda: with_overrides({"complaint_base": 0.02})
        )
        result = seed_demo(session, accounts=1200, seed=5, as_of=AS_OF)
        counts = {each.code: each.counts for each in result.institutions}
        for code, count in counts.items():
            institution = session.scalars(select(Institution).where(Institution.code == code)).one()
            events = session.execute(
                select(CaseEventRow, Case)
                .join(Case, Case.id == CaseEventRow.case_id)
                .where(
                    CaseEventRow.institution_id == institution.id,
                    CaseEventRow.event == "complaint",
                )
            ).all()
            assert count["complaints"] > 0, count
            assert len(events) == count["complaints_recorded"]
            assert (
                count["complaints_recorded"] + count["complaints_without_case"]
                == (count["complaints"])
            )
            assert count["complaints_recorded"] > 0, (code, count)
            agents = {
                user.username: user.id
                for user in session.scalars(
                    select(User).where(User.institution_id == institution.id)
                )
            }
            for event, case in events:
                assert event.reason == "complaint"
                # Each follows a contact of the simulated log with the debtor, on its channel
                # and by its agent (an agent's call or visit; the system for a message).
                contact = session.scalars(
                    select(ContactAttempt).where(
                        ContactAttempt.debtor_id == case.debtor_id,
                        ContactAttempt.ended_at == event.at,
                    )
                ).first()
                assert contact is not None
                assert event.note == f"complaint about a {contact.channel} contact"
                if contact.agent_id is not None:
                    assert agents[event.actor] == contact.agent_id
                else:
                    assert event.actor == "demo-seed"
                assert (
                    WINDOW_START <= np.datetime64(event.at.date(), "D") <= np.datetime64(AS_OF, "D")
                )
