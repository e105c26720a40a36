"""Scripts on a real database: defaults through review, the suggestion, the comparison."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from recoup.cases.rules import CaseState
from recoup.compliance.templates import service as templates_service
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.enums import ScriptSituation
from recoup.identity.principal import principal_for_user
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.models.cases import Case, CaseEvent
from recoup.models.compliance import TemplateStatus
from recoup.models.contact import ContactAttempt
from recoup.models.workbench import PromiseStatus
from recoup.scripts import service
from recoup.scripts.rules import Answered
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import make_user
from tests.scripts.helpers import ScriptWorld, script_world
from tests.workbench.helpers import add_promise


class TestDefaults:
    @pytest.mark.parametrize("jurisdiction", ["CN", "US", "CN-LOCAL"])
    def test_every_default_script_passes_the_review_of_the_pack(
        self, session: Session, jurisdiction: str
    ) -> None:
        institution = make_institution(session, jurisdiction=jurisdiction)
        manager = make_user(session, institution, role="manager")
        drafted = service.seed_default_scripts(
            session, institution_id=institution.id, author=manager.username, author_id=manager.id
        )
        assert len(drafted) == len(ScriptSituation) * 2
        assert {script.status for script in drafted} == {TemplateStatus.submitted}
        assert [script.findings for script in drafted if script.findings] == []
        third = [s for s in drafted if s.situation in ("third_party", "wrong_number")]
        assert {s.audience for s in third} == {"third_party"}

    def test_seeding_again_adds_nothing(self, session: Session) -> None:
        world = script_world(session)
        again = service.seed_default_scripts(
            session,
            institution_id=world.institution.id,
            author=world.manager.username,
            author_id=world.manager.id,
        )
        assert again == []
        library = service.library(session, institution_id=world.institution.id, locale="en-US")
        assert all(len(scripts) == 1 for scripts in library.values())

    def test_four_eyes_the_author_cannot_approve_their_own_script(self, session: Session) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        drafted = service.seed_default_scripts(
            session, institution_id=institution.id, author=officer.username, author_id=officer.id
        )
        with pytest.raises(Conflict, match="author cannot review"):
            templates_service.decide_template(
                session,
                institution_id=institution.id,
                template_id=drafted[0].id,
                approve=True,
                actor=officer.username,
                actor_id=officer.id,
            )

    def test_guidance_is_reviewed_with_the_text(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        officer = make_user(session, institution, role="compliance_officer")
        script = templates_service.create_template(
            session,
            institution_id=institution.id,
            name="强硬话术",
            channel="call",
            locale="zh-CN",
            audience="debtor",
            kind="script",
            situation="refusal_to_pay",
            guidance="告诉他再不还钱就让他坐牢\n可以骂他是老赖",
            body="{{ debtor_name }}，请尽快安排还款。",
            author=manager.username,
            author_id=manager.id,
        )
        templates_service.submit_template(
            session,
            institution_id=institution.id,
            template_id=script.id,
            actor=manager.username,
            actor_id=manager.id,
        )
        assert script.findings
        assert {finding["field"] for finding in script.findings} == {"guidance"}
        with pytest.raises(Conflict, match="review findings"):
            templates_service.decide_template(
                session,
                institution_id=institution.id,
                template_id=script.id,
                approve=True,
                actor=officer.username,
                actor_id=officer.id,
            )

    def test_a_script_without_guidance_or_with_the_wrong_audience_is_refused(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        arguments = {
            "institution_id": institution.id,
            "name": "x",
            "channel": "call",
            "locale": "en-US",
            "kind": "script",
            "body": "Hello",
            "author": "m",
            "author_id": None,
        }
        with pytest.raises(ValidationFailed, match="guidance") as refused:
            templates_service.create_template(
                session, **arguments, audience="debtor", situation="dispute", guidance=""
            )
        assert refused.value.extra["errors"][0]["field"] == "guidance"
        with pytest.raises(ValidationFailed, match="audience"):
            templates_service.create_template(
                session, **arguments, audience="debtor", situation="third_party", guidance="Be kind"
            )


def _made(
    session: Session,
    world: ScriptWorld,
    *,
    outcome: OutcomeCode,
    at: datetime,
    script_id: int | None,
    debtor_id: int | None = None,
) -> int:
    row = contact_service.log_inbound(
        session,
        institution_id=world.institution.id,
        debtor_id=debtor_id or world.debtor.id,
        channel=Channel.CALL,
        started_at=at,
        actor=world.agent.username,
        outcome=outcome,
        party=Party.THIRD_PARTY if outcome == OutcomeCode.THIRD_PARTY else Party.DEBTOR,
        script_id=script_id,
    )
    return row[0].id


class TestSuggestion:
    def test_an_open_case_gets_the_opening_rendered_for_it_with_guidance(
        self, session: Session
    ) -> None:
        world = script_world(session)
        suggestion = service.suggest_script(
            session,
            institution_id=world.institution.id,
            case_id=world.case.id,
            locale="zh-CN",
            agent_name="李娜",
        )
        assert suggestion.situation is ScriptSituation.first_contact
        assert suggestion.script is not None
        assert suggestion.script.situation == "first_contact"
        assert suggestion.text is not None
        assert "张*" in suggestion.text
        assert "张伟" not in suggestion.text
        assert "李娜" in suggestion.text
        assert "Test Lender" in suggestion.text
        assert "¥10,650.00" in suggestion.text
        assert suggestion.guidance
        assert not suggestion.guidance[0].startswith("-")

    def test_someone_else_answering_gets_the_third_party_script(self, session: Session) -> None:
        world = script_world(session)
        suggestion = service.suggest_script(
            session,
            institution_id=world.institution.id,
            case_id=world.case.id,
            locale="en-US",
            answered=Answered.THIRD_PARTY,
        )
        assert suggestion.situation is ScriptSituation.third_party
        assert suggestion.text is not None
        assert "10,650" not in suggestion.text
        assert "debt" not in suggestion.text.lower()

    def test_the_last_outcome_comes_from_the_contact_log(self, session: Session) -> None:
        world = script_world(session)
        _made(
            session,
            world,
            outcome=OutcomeCode.ABUSIVE,
            at=datetime.now(UTC) - timedelta(days=1),
            script_id=None,
        )
        suggestion = service.suggest_script(
            session, institution_id=world.institution.id, case_id=world.case.id, locale="zh-CN"
        )
        assert suggestion.situation is ScriptSituation.anger_or_abuse

    def test_a_promise_running_is_confirmed_with_its_amount_and_date(
        self, session: Session
    ) -> None:
        world = script_world(session)
        due = date.today() + timedelta(days=5)
        add_promise(session, world.account, amount=50_000, promised_on=date.today(), due_date=due)
        world.case.state = CaseState.PROMISED
        session.flush()
        suggestion = service.suggest_script(
            session, institution_id=world.institution.id, case_id=world.case.id, locale="en-US"
        )
        assert suggestion.situation is ScriptSituation.promise_confirmation
        assert suggestion.text is not None
        assert "CN¥500.00" in suggestion.text
        assert due.isoformat() in suggestion.text

    def test_no_approved_script_says_so(self, session: Session) -> None:
        world = script_world(session)
        for script in world.scripts:
            if script.situation == "first_contact" and script.locale == "en-US":
                templates_service.decide_template(
                    session,
                    institution_id=world.institution.id,
                    template_id=script.id,
                    approve=False,
                    actor=world.officer.username,
                    actor_id=world.officer.id,
                    note="Rewrite the opening",
                )
        suggestion = service.suggest_script(
            session, institution_id=world.institution.id, case_id=world.case.id, locale="en-US"
        )
        assert (suggestion.script, suggestion.text, suggestion.missing) == (None, None, "no_script")

    def test_another_agents_case_is_not_found(self, session: Session) -> None:
        world = script_world(session)
        other = make_user(session, world.institution, role="agent")
        principal = principal_for_user(other)
        with pytest.raises(NotFound):
            service.suggest_script(
                session,
                institution_id=world.institution.id,
                case_id=world.case.id,
                locale="zh-CN",
                principal=principal,
            )

    def test_a_bad_locale_or_outcome_names_the_field(self, session: Session) -> None:
        world = script_world(session)
        with pytest.raises(ValidationFailed, match="locale"):
            service.suggest_script(
                session, institution_id=world.institution.id, case_id=world.case.id, locale="fr"
            )
        with pytest.raises(ValidationFailed, match="last_outcome"):
            service.suggest_script(
                session,
                institution_id=world.institution.id,
                case_id=world.case.id,
                locale="zh-CN",
                last_outcome="shouted",
            )


class TestRecording:
    def test_the_script_used_is_kept_with_the_contact(self, session: Session) -> None:
        world = script_world(session)
        script = world.script("first_contact")
        attempt_id = _made(
            session,
            world,
            outcome=OutcomeCode.RIGHT_PARTY,
            at=datetime.now(UTC),
            script_id=script.id,
        )
        assert session.get(ContactAttempt, attempt_id).script_id == script.id  # type: ignore[union-attr]

    def test_only_an_approved_script_of_the_institution_is_accepted(self, session: Session) -> None:
        world = script_world(session)
        other = script_world(session)
        # Another institution's script, or none at all, is not found (as any foreign id is).
        for script_id in (other.script("first_contact").id, 10**9):
            with pytest.raises(NotFound, match="script_id"):
                _made(
                    session,
                    world,
                    outcome=OutcomeCode.RIGHT_PARTY,
                    at=datetime.now(UTC),
                    script_id=script_id,
                )
        # One of the institution's scripts still in review is refused, naming the field.
        draft = templates_service.create_template(
            session,
            institution_id=world.institution.id,
            name="draft",
            channel="call",
            locale="zh-CN",
            audience="debtor",
            kind="script",
            situation="dispute",
            guidance="认真记录",
            body="您好",
            author=world.manager.username,
            author_id=world.manager.id,
        )
        with pytest.raises(ValidationFailed, match="script_id") as refused:
            _made(
                session,
                world,
                outcome=OutcomeCode.RIGHT_PARTY,
                at=datetime.now(UTC),
                script_id=draft.id,
            )
        assert refused.value.extra["errors"][0]["field"] == "script_id"
        # A message template is no script.
        template = templates_service.create_template(
            session,
            institution_id=world.institution.id,
            name="sms",
            channel="sms",
            locale="zh-CN",
            audience="debtor",
            body="您好",
            author=world.manager.username,
            author_id=world.manager.id,
        )
        with pytest.raises(NotFound, match="script_id"):
            _made(
                session,
                world,
                outcome=OutcomeCode.RIGHT_PARTY,
                at=datetime.now(UTC),
                script_id=template.id,
            )


class TestPerformance:
    def test_each_script_counts_its_contacts_promises_kept_disputes_and_complaints(
        self, session: Session
    ) -> None:
        world = script_world(session)
        opening = world.script("first_contact")
        plan = world.script("plan_offer")
        start = datetime(2026, 3, 2, 2, tzinfo=UTC)
        second = make_debtor(session, world.institution)
        second_account = make_account(session, second)
        # Opening script: four contacts with the first debtor, two promises (one kept, one
        # broken), one dispute; one no-answer.
        _made(session, world, outcome=OutcomeCode.PROMISE_MADE, at=start, script_id=opening.id)
        kept = add_promise(
            session,
            world.account,
            amount=10_000,
            promised_on=start.date(),
            due_date=start.date() + timedelta(days=3),
            status=PromiseStatus.kept,
            resolved_at=start + timedelta(days=3),
        )
        kept.created_at = start + timedelta(minutes=5)
        later = start + timedelta(days=10)
        _made(session, world, outcome=OutcomeCode.PROMISE_MADE, at=later, script_id=opening.id)
        broken = add_promise(
            session,
            world.account,
            amount=10_000,
            promised_on=later.date(),
            due_date=later.date() + timedelta(days=3),
            status=PromiseStatus.broken,
            resolved_at=later + timedelta(days=6),
        )
        broken.created_at = later + timedelta(minutes=3)
        _made(
            session,
            world,
            outcome=OutcomeCode.DISPUTE,
            at=start + timedelta(days=20),
            script_id=opening.id,
        )
        _made(
            session,
            world,
            outcome=OutcomeCode.NO_ANSWER,
            at=start + timedelta(days=21),
            script_id=opening.id,
        )
        # Plan offer: one conversation with the second debtor, a complaint four days later;
        # a promise made without a script is nobody's.
        _made(
            session,
            world,
            outcome=OutcomeCode.REFUSED_TO_PAY,
            at=start + timedelta(days=5),
            script_id=plan.id,
            debtor_id=second.id,
        )
        second_case = Case(
            institution_id=world.institution.id,
            debtor_id=second.id,
            state="paused",
            opened_at=start,
        )
        session.add(second_case)
        session.flush()
        session.add(
            CaseEvent(
                institution_id=world.institution.id,
                case_id=second_case.id,
                event="complaint",
                from_state="open",
                to_state="paused",
                reason="complaint",
                actor="lead",
                at=start + timedelta(days=9),
            )
        )
        _made(
            session,
            world,
            outcome=OutcomeCode.PROMISE_MADE,
            at=start + timedelta(days=25),
            script_id=None,
            debtor_id=second.id,
        )
        add_promise(
            session,
            second_account,
            amount=5_000,
            promised_on=(start + timedelta(days=25)).date(),
            due_date=(start + timedelta(days=30)).date(),
            status=PromiseStatus.kept,
        )
        # Outside the period: not counted.
        _made(
            session,
            world,
            outcome=OutcomeCode.PROMISE_MADE,
            at=start - timedelta(days=1),
            script_id=opening.id,
        )
        session.flush()
        rows = service.script_performance(
            session,
            institution_id=world.institution.id,
            since=start.date(),
            until=start.date() + timedelta(days=30),
        )
        by_id = {row.script.id: row for row in rows}
        assert len(rows) == len(world.scripts)
        first = by_id[opening.id]
        assert (
            first.outcomes.attempts,
            first.outcomes.right_party,
            first.outcomes.promises,
            first.outcomes.promises_resolved,
            first.outcomes.promises_kept,
            first.outcomes.disputes,
            first.outcomes.complaints,
        ) == (4, 3, 2, 2, 1, 1, 0)
        assert first.rates.promise_rate == pytest.approx(2 / 3)
        assert first.rates.kept_rate == 0.5
        assert first.rates.dispute_rate == 0.25
        offer = by_id[plan.id]
        assert (offer.outcomes.attempts, offer.outcomes.promises, offer.outcomes.complaints) == (
            1,
            0,
            1,
        )
        assert offer.rates.kept_rate is None
        assert rows[0].script.id == opening.id
        unused = by_id[world.script("hardship").id]
        assert unused.outcomes.attempts == 0
        assert unused.rates.promise_rate is None

    def test_a_period_that_ends_before_it_starts_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="until"):
            service.script_performance(
                session,
                institution_id=institution.id,
                since=date(2026, 3, 2),
                until=date(2026, 3, 1),
            )
