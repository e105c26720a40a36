"""Strategies over the database: presets copied, drafts, checks, activation, events, results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases
from recoup.cases.rules import CaseEvent
from recoup.compliance.templates import service as templates
from recoup.kit import clock
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.models.audit import AuditEvent
from recoup.models.cases import Case
from recoup.models.institution import Institution
from recoup.models.jobs import Job
from recoup.models.strategy import CaseStrategyState, CaseStrategyStep
from recoup.strategy import service, tasks
from recoup.strategy.document import StrategyEvent
from recoup.strategy.experiments import Significance
from recoup.strategy.presets import preset_text
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import make_user
from tests.workbench.helpers import add_payment, add_promise

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def approve_preset_templates(session: Session, institution: Institution) -> None:
    author = make_user(session, institution, role="manager")
    reviewer = make_user(session, institution, role="compliance_officer")
    for name, channel, body in (
        ("还款提醒短信", "sms", "您好，您的账单已到期，请按时还款，如有疑问请致电客服。"),
        ("逾期首次电话话术", "call", "您好，来电是关于您到期的账单，请问您方便沟通还款安排吗？"),
    ):
        template = templates.create_template(
            session,
            institution_id=institution.id,
            name=name,
            channel=channel,
            locale="zh-CN",
            audience="debtor",
            body=body,
            author=author.username,
            author_id=author.id,
        )
        templates.submit_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            actor=author.username,
            actor_id=author.id,
        )
        templates.decide_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            approve=True,
            actor=reviewer.username,
            actor_id=reviewer.id,
            note="ok",
            today=clock.local_today(institution.timezone),
        )


def open_case(session: Session, institution: Institution, **account: int) -> Case:
    debtor = make_debtor(session, institution)
    make_account(session, debtor, **account)
    cases.sync_cases(session, institution_id=institution.id, now=NOW)
    return session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()


def actions(session: Session, institution: Institution) -> list[str]:
    return list(
        session.execute(
            select(AuditEvent.action)
            .where(AuditEvent.institution_id == institution.id)
            .order_by(AuditEvent.id)
        ).scalars()
    )


class TestDrafts:
    def test_a_preset_is_copied_into_a_first_draft(self, session: Session) -> None:
        institution = make_institution(session, preset="commercial_bank")
        _strategy, version = service.create_strategy(
            session, institution=institution, code="bank", name="Bank", actor="m"
        )
        assert (version.version, version.status) == (1, "draft")
        assert version.document == preset_text("commercial_bank")
        assert "strategy.create" in actions(session, institution)
        with pytest.raises(Conflict):
            service.create_strategy(
                session, institution=institution, code="bank", name="Again", actor="m"
            )

    def test_a_bad_code_or_document_is_refused_by_field_and_line(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="code"):
            service.create_strategy(
                session, institution=institution, code="Bad Code", name="x", actor="m"
            )
        strategy, _ = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        with pytest.raises(ValidationFailed) as refused:
            service.save_draft(
                session,
                institution=institution,
                strategy=strategy,
                document="name: x\nsegments:\n  - code: A\n",
                actor="m",
            )
        assert refused.value.extra["errors"][0]["line"] == 3

    def test_an_active_version_never_changes_edits_start_the_next_draft(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        approve_preset_templates(session, institution)
        strategy, version = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        service.activate(
            session, institution=institution, strategy=strategy, number=1, actor="manager"
        )
        edited = preset_text("consumer_finance").replace("grace_days: 3", "grace_days: 5")
        draft = service.save_draft(
            session, institution=institution, strategy=strategy, document=edited, actor="m"
        )
        assert draft.version == 2
        assert version.document == preset_text("consumer_finance")
        assert version.status == "active"
        again = service.save_draft(
            session, institution=institution, strategy=strategy, document=edited, actor="m"
        )
        assert again.id == draft.id

    def test_another_institution_s_strategy_is_not_found(self, session: Session) -> None:
        mine, theirs = make_institution(session), make_institution(session)
        strategy, _ = service.create_strategy(
            session, institution=theirs, code="cf", name="CF", actor="m"
        )
        with pytest.raises(NotFound):
            service.get_strategy(session, institution_id=mine.id, strategy_id=strategy.id)


class TestActivation:
    def test_errors_stop_activation_and_name_their_line(self, session: Session) -> None:
        institution = make_institution(session)
        strategy, _ = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        with pytest.raises(ValidationFailed) as refused:
            service.activate(
                session, institution=institution, strategy=strategy, number=1, actor="m"
            )
        errors = refused.value.extra["errors"]
        assert {error["code"] for error in errors} == {"template_unknown"}
        assert all(error["line"] for error in errors)

    def test_activation_is_audited_and_retires_the_previous_version(self, session: Session) -> None:
        institution = make_institution(session)
        approve_preset_templates(session, institution)
        first, _ = service.create_strategy(
            session, institution=institution, code="one", name="One", actor="m"
        )
        second, _ = service.create_strategy(
            session, institution=institution, code="two", name="Two", actor="m"
        )
        one = service.activate(
            session, institution=institution, strategy=first, number=1, actor="a"
        )
        two = service.activate(
            session, institution=institution, strategy=second, number=1, actor="a"
        )
        assert (one.status, two.status) == ("retired", "active")
        assert actions(session, institution).count("strategy.activate") == 2
        with pytest.raises(ValidationFailed, match="retired"):
            service.activate(session, institution=institution, strategy=first, number=1, actor="a")


class TestPreview:
    def test_today_s_accounts_fall_into_segments(self, session: Session) -> None:
        institution = make_institution(session)
        open_case(session, institution, principal=50_000, interest=0, fees=0, penalty=0)
        open_case(session, institution, principal=5_000_000)
        open_case(session, institution, principal=500_000)
        check = service.check_document(
            session, institution=institution, document=preset_text("consumer_finance")
        )
        counts = {item.code: item.assigned for item in check.preview.segments}
        assert check.preview.accounts == 3
        assert counts == {
            "business": 0,
            "high_value": 1,
            "self_cure_window": 0,
            "young_one_call": 0,
            "mid_digital": 0,
            "persuadable": 0,
            "low_propensity": 0,
            "young_digital": 0,
            "low_balance": 1,
            "standard": 1,
        }

    def test_a_broken_document_gives_problems_not_a_crash(self, session: Session) -> None:
        institution = make_institution(session)
        check = service.check_document(session, institution=institution, document="name: [")
        assert check.problems
        assert not check.can_activate


class TestEvents:
    def active(self, session: Session) -> Institution:
        institution = make_institution(session)
        approve_preset_templates(session, institution)
        strategy, _ = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        service.activate(session, institution=institution, strategy=strategy, number=1, actor="m")
        return institution

    def test_case_events_ask_for_the_strategy_job(self, session: Session) -> None:
        institution = make_institution(session)
        case = open_case(session, institution)
        cases.apply_to_case(session, case, CaseEvent.PROMISE_MADE, actor="agent", now=NOW)
        payloads = list(
            session.execute(select(Job.payload).where(Job.name == "strategy.on_event")).scalars()
        )
        assert {
            "institution_id": institution.id,
            "case_id": case.id,
            "case_event": "promise_made",
        } in payloads

    def test_a_promise_pauses_the_case_until_due_plus_grace(self, session: Session) -> None:
        institution = self.active(session)
        case = open_case(session, institution, principal=500_000)
        account_id = session.execute(select(Case.id).where(Case.id == case.id)).scalar_one()
        assert account_id
        today = clock.local_today(institution.timezone)
        from recoup.models.cases import CaseAccount

        account = session.execute(
            select(CaseAccount.account_id).where(CaseAccount.case_id == case.id)
        ).scalar_one()
        from recoup.models.account import Account

        add_promise(
            session,
            session.get(Account, account),
            amount=1000,
            promised_on=today,
            due_date=today + timedelta(days=4),
        )
        tasks.on_event(
            session,
            {"institution_id": institution.id, "case_id": case.id, "case_event": "promise_made"},
        )
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
        ).scalar_one()
        assert state.step == "paused"
        assert state.paused_until == today + timedelta(days=7)
        assert state.segment == "standard"
        assert "paused until" in state.reason

    def test_two_broken_promises_in_a_row_go_a_level_further(self, session: Session) -> None:
        institution = self.active(session)
        case = open_case(session, institution, principal=500_000)
        payload = {
            "institution_id": institution.id,
            "case_id": case.id,
            "case_event": "promise_broken",
        }
        tasks.on_event(session, payload)
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
        ).scalar_one()
        assert state.step == "promise_follow_up"
        tasks.on_event(session, payload)
        assert state.step == "next_level"
        assert state.broken_promises == 2
        history = session.execute(
            select(CaseStrategyStep.step).where(CaseStrategyStep.case_id == case.id)
        ).scalars()
        assert list(history) == ["promise_follow_up", "next_level"]

    @pytest.mark.parametrize(
        ("event", "step", "stopped"),
        [
            ("dispute", "hold", True),
            ("wrong_number", "skip_trace", False),
            ("hardship", "offer_plan", True),
            ("cease_request", "stop", True),
            ("complaint", "review", True),
        ],
    )
    def test_events_re_route_at_once(
        self, session: Session, event: str, step: str, stopped: bool
    ) -> None:
        institution = self.active(session)
        case = open_case(session, institution)
        tasks.on_event(
            session, {"institution_id": institution.id, "debtor_id": case.debtor_id, "event": event}
        )
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
        ).scalar_one()
        assert (state.step, state.contact_stopped) == (step, stopped)

    def test_a_payment_re_evaluates_the_case(self, session: Session) -> None:
        institution = self.active(session)
        case = open_case(session, institution, principal=500_000)
        tasks.on_event(
            session, {"institution_id": institution.id, "case_id": case.id, "event": "dispute"}
        )
        state = session.execute(
            select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
        ).scalar_one()
        state.updated_at = NOW - timedelta(days=1)
        from recoup.models.account import Account
        from recoup.models.cases import CaseAccount

        account_id = session.execute(
            select(CaseAccount.account_id).where(CaseAccount.case_id == case.id)
        ).scalar_one()
        add_payment(session, session.get(Account, account_id), amount=100, paid_at=NOW)
        tasks.reevaluate_paid(session, {"institution_id": institution.id})
        assert state.source == "payment_received"
        assert state.step == "reminder_sms"

    def test_without_an_active_strategy_events_do_nothing(self, session: Session) -> None:
        institution = make_institution(session)
        case = open_case(session, institution)
        assert (
            service.apply_event(
                session, institution=institution, case_id=case.id, event=StrategyEvent.DISPUTE
            )
            is None
        )


class TestResults:
    def test_arms_report_with_intervals_and_the_sample_still_needed(self, session: Session) -> None:
        institution = make_institution(session)
        approve_preset_templates(session, institution)
        strategy, version = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        service.activate(session, institution=institution, strategy=strategy, number=1, actor="m")
        today = clock.local_today(institution.timezone)
        from recoup.models.account import Account
        from recoup.models.cases import CaseAccount

        for index in range(12):
            case = open_case(session, institution, principal=500_000)
            arm = "control" if index % 3 == 0 else "champion"
            session.add(
                CaseStrategyState(
                    institution_id=institution.id,
                    case_id=case.id,
                    strategy_version_id=version.id,
                    segment="young_digital",
                    arm=arm,
                    step="reminder_sms",
                    entered_on=today - timedelta(days=5),
                    reason="test",
                    as_of=today,
                    updated_at=NOW,
                )
            )
            if index % 2 == 0:
                account_id = session.execute(
                    select(CaseAccount.account_id).where(CaseAccount.case_id == case.id)
                ).scalar_one()
                add_payment(
                    session,
                    session.get(Account, account_id),
                    amount=10_000,
                    paid_at=datetime.now(UTC),
                )
        session.flush()
        [report] = service.experiment_results(session, institution=institution, version=version)
        arms = {arm.arm: arm for arm in report.arms}
        assert report.segment == "young_digital"
        assert arms["champion"].accounts == 8
        assert arms["control"].accounts == 4
        assert arms["champion"].recovery_rate.value == pytest.approx(4 / 8)
        assert arms["control"].recovery_rate.value == pytest.approx(2 / 4)
        assert arms["control"].significance is Significance.NOT_YET
        assert arms["control"].still_needed is None
        assert arms["email_first"].significance is Significance.NO_DATA
        assert arms["champion"].collected_per_account.value == pytest.approx(5_000)

    def test_promoting_a_challenger_is_audited_in_a_new_draft(self, session: Session) -> None:
        institution = make_institution(session)
        strategy, _ = service.create_strategy(
            session, institution=institution, code="cf", name="CF", actor="m"
        )
        service.save_draft(
            session,
            institution=institution,
            strategy=strategy,
            document=preset_text("consumer_finance"),
            actor="m",
        )
        approve_preset_templates(session, institution)
        service.activate(session, institution=institution, strategy=strategy, number=1, actor="m")
        draft = service.promote_challenger(
            session,
            institution=institution,
            strategy=strategy,
            segment="young_digital",
            arm="email_first",
            actor="manager",
        )
        assert draft.version == 2
        from recoup.strategy.rules import compile_strategy

        compiled = compile_strategy(draft.document)
        young = compiled.segment("young_digital")
        assert compiled.steps[young.paths["champion"].step_indexes[0]].code == "reminder_email"
        assert [c.code for c in young.experiment.challengers] == []
        assert "strategy.promote" in actions(session, institution)
        with pytest.raises(ValidationFailed):
            service.promote_challenger(
                session,
                institution=institution,
                strategy=strategy,
                segment="young_digital",
                arm="nope",
                actor="m",
            )


def test_a_state_from_an_earlier_version_is_segmented_again(session: Session) -> None:
    institution = make_institution(session)
    approve_preset_templates(session, institution)
    first, _ = service.create_strategy(
        session, institution=institution, code="one", name="One", actor="m"
    )
    service.activate(session, institution=institution, strategy=first, number=1, actor="m")
    case = open_case(session, institution, principal=500_000)
    tasks.on_event(
        session, {"institution_id": institution.id, "case_id": case.id, "event": "dispute"}
    )
    second, _ = service.create_strategy(
        session,
        institution=institution,
        code="two",
        name="Two",
        preset="commercial_bank",
        actor="m",
    )
    version = service.activate(
        session, institution=institution, strategy=second, number=1, actor="m"
    )
    tasks.on_event(
        session,
        {"institution_id": institution.id, "case_id": case.id, "case_event": "promise_broken"},
    )
    state = session.execute(
        select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
    ).scalar_one()
    assert state.strategy_version_id == version.id
    assert state.segment == "standard"
    assert state.step == "promise_follow_up"
