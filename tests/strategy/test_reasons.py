"""Why a case is on its step: stored as a code with its values, read in zh-CN and in English."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit import clock
from recoup.kit.clock import utcnow
from recoup.models.strategy import CaseStrategyState, CaseStrategyStep
from recoup.strategy import service, tasks
from recoup.web.labels import strategy_reason
from tests.factories import make_institution
from tests.strategy.test_service import approve_preset_templates, open_case
from tests.web.test_untranslated_text import untranslated


def _active(session: Session):  # type: ignore[no-untyped-def]
    institution = make_institution(session)
    approve_preset_templates(session, institution)
    strategy, _ = service.create_strategy(
        session, institution=institution, code="cf", name="CF", actor="m"
    )
    service.activate(session, institution=institution, strategy=strategy, number=1, actor="m")
    return institution


def _state(session: Session, case_id: int) -> CaseStrategyState:
    return session.execute(
        select(CaseStrategyState).where(CaseStrategyState.case_id == case_id)
    ).scalar_one()


def test_the_cycle_stores_the_path_reason_as_a_code_with_its_values(session: Session) -> None:
    institution = _active(session)
    case = open_case(session, institution, principal=500_000)
    today = clock.local_today(institution.timezone)

    service.assign_cases(session, institution=institution, as_of=today, now=utcnow())

    state = _state(session, case.id)
    assert state.reason_code == "path"
    assert state.reason_params == {
        "segment": "standard",
        "arm": "champion",
        "day": 0,
        "step": "reminder_sms",
        "from_day": 0,
    }
    # The English text is kept as before (logs, the API).
    assert (
        state.reason
        == "segment standard, arm champion: day 0 on the path, step reminder_sms from day 0"
    )
    history = session.execute(
        select(CaseStrategyStep.reason_code, CaseStrategyStep.reason_params).where(
            CaseStrategyStep.case_id == case.id
        )
    ).one()
    assert tuple(history) == (state.reason_code, state.reason_params)

    zh = strategy_reason(state.reason_code, state.reason_params, "zh-CN")
    en = strategy_reason(state.reason_code, state.reason_params, "en")
    assert "处置路径第 0 天" in zh
    assert "day 0 on the path" in en
    # The document's codes are shown as written and marked so: nothing else is English.
    assert '<span class="mono" translate="no">reminder_sms</span>' in zh
    assert untranslated(f"<p>{zh}</p>") == []


def test_an_event_reason_names_the_event_and_the_step_it_starts(session: Session) -> None:
    institution = _active(session)
    case = open_case(session, institution, principal=500_000)
    tasks.on_event(
        session,
        {"institution_id": institution.id, "case_id": case.id, "case_event": "promise_broken"},
    )

    state = _state(session, case.id)
    assert state.reason_code == "escalated"
    assert state.reason_params == {
        "event": "promise_broken",
        "count": 1,
        "in_a_row": 2,
        "then": {
            "code": "event_step",
            "params": {
                "segment": "standard",
                "event": "promise_broken",
                "step": "promise_follow_up",
            },
        },
    }
    zh = strategy_reason(state.reason_code, state.reason_params, "zh-CN")
    en = strategy_reason(state.reason_code, state.reason_params, "en")
    assert zh.startswith("承诺未兑现：连续 1 次，升级处理；分群 ")
    assert zh.endswith('转入步骤 <span class="mono" translate="no">promise_follow_up</span>')
    assert "1 in a row, escalated; segment" in en
    assert untranslated(f"<p>{zh}</p>") == []


def test_every_reason_code_reads_in_both_languages() -> None:
    examples = {
        "path": {"segment": "s", "arm": "a", "day": 3, "step": "x", "from_day": 1},
        "before_path": {"segment": "s", "arm": "a", "day": 0},
        "exit": {"segment": "s", "number": 2, "action": "skip_trace"},
        "event_step": {"segment": "s", "event": "promise_broken", "step": "x"},
        "no_segment": {},
        "cured": {},
        "reevaluate": {},
        "paused": {"event": "promise_made", "until": "2026-12-10", "grace": 3},
        "escalated": {"event": "promise_broken", "count": 1, "in_a_row": 2},
        "next_level": {"event": "promise_broken", "count": 2, "in_a_row": 2},
        "event_action": {"event": "cease_request", "action": "stop"},
        "event_queue": {"event": "dispute", "action": "hold", "queue": "dispute"},
    }
    for code, params in examples.items():
        for locale in ("zh-CN", "en"):
            text = str(strategy_reason(code, params, locale))
            assert not text.startswith("strategy.reason"), (code, locale)
            assert "{" not in text, (code, locale, text)
        assert untranslated(f"<p>{strategy_reason(code, params, 'zh-CN')}</p>") == [], code
    # Dates read as dates; values are escaped.
    assert "2026年12月10日" in strategy_reason("paused", examples["paused"], "zh-CN")
    assert "&lt;b&gt;" in strategy_reason("path", {**examples["path"], "segment": "<b>"}, "en")
