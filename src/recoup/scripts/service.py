"""Call scripts (话术): the library, default scripts, the suggestion for a case, the comparison.

A script is a message template of kind ``script`` (``compliance.templates``): it is drafted,
reviewed and approved with four eyes exactly as a message template is, and its guidance is
reviewed with its text. Only approved scripts reach agents. Never commits.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources

from sqlalchemy.orm import Session

from recoup.compliance.templates import service as templates_service
from recoup.compliance.templates.rules import script_audience
from recoup.contact import repository as contact_repository
from recoup.contact.rules import RIGHT_PARTY_CODES, OutcomeCode
from recoup.enums import SCRIPT_KIND, ScriptSituation
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.institutions import repository as institutions_repository
from recoup.kit.clock import local_today, utcnow
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.kit.masking import mask_name
from recoup.kit.money import format_amount
from recoup.models.cases import Case
from recoup.models.compliance import MessageTemplate, TemplateStatus
from recoup.models.debtor import Debtor
from recoup.scripts import repository, rules
from recoup.scripts.rules import Answered, Conversation, ScriptOutcomes, Suggestion

SCRIPT_LOCALES = ("zh-CN", "en-US")
# A promise logged within a day after a scripted call that brought one is that call's.
PROMISE_WINDOW = timedelta(days=1)
# A complaint within a week after a scripted call is counted against that call's script.
COMPLAINT_WINDOW = timedelta(days=7)
# A promise broken this recently makes a plan the better offer.
BROKEN_PROMISE_WINDOW = timedelta(days=90)
NOT_KNOWN = "—"


@dataclass(frozen=True, slots=True)
class DefaultScript:
    """One shipped script: its situation, language, name, text and guidance."""

    situation: ScriptSituation
    locale: str
    name: str
    body: str
    guidance: str


@cache
def default_scripts() -> tuple[DefaultScript, ...]:
    """Return the scripts every institution starts with (``scripts/defaults.json``)."""
    raw = json.loads(
        resources.files("recoup.scripts").joinpath("defaults.json").read_text(encoding="utf-8")
    )
    return tuple(
        DefaultScript(
            situation=ScriptSituation(item["situation"]),
            locale=item["locale"],
            name=item["name"],
            body=item["body"],
            guidance=item["guidance"],
        )
        for item in raw["scripts"]
    )


def guidance_points(guidance: str | None) -> list[str]:
    """Split a script's guidance into its points, one a line, bullets dropped."""
    points = (line.strip().lstrip("-•*·").strip() for line in (guidance or "").splitlines())
    return [point for point in points if point]


def seed_default_scripts(
    session: Session,
    *,
    institution_id: int,
    author: str,
    author_id: int | None,
    locales: Sequence[str] = SCRIPT_LOCALES,
) -> list[MessageTemplate]:
    """Draft and submit the default scripts the institution has no script for yet.

    Each is reviewed under the institution's rule pack on submission; a compliance officer
    other than ``author`` approves it. A situation and language that already has a script
    of any status is left alone, so running this again adds nothing.
    """
    existing = {
        (str(script.situation), script.locale)
        for script in repository.scripts(session, institution_id=institution_id)
    }
    created = []
    for default in default_scripts():
        if default.locale not in locales or (default.situation.value, default.locale) in existing:
            continue
        script = templates_service.create_template(
            session,
            institution_id=institution_id,
            name=default.name,
            channel="call",
            locale=default.locale,
            audience=script_audience(default.situation).value,
            kind=SCRIPT_KIND,
            situation=default.situation.value,
            guidance=default.guidance,
            body=default.body,
            author=author,
            author_id=author_id,
        )
        templates_service.submit_template(
            session,
            institution_id=institution_id,
            template_id=script.id,
            actor=author,
            actor_id=author_id,
        )
        created.append(script)
    return created


def library(
    session: Session, *, institution_id: int, locale: str | None = None
) -> dict[ScriptSituation, list[MessageTemplate]]:
    """Return the approved scripts by situation, every situation present (maybe empty)."""
    found: dict[ScriptSituation, list[MessageTemplate]] = {s: [] for s in ScriptSituation}
    for script in repository.scripts(
        session, institution_id=institution_id, status=TemplateStatus.approved, locale=locale
    ):
        if script.situation is not None:
            found[ScriptSituation(script.situation)].append(script)
    return found


def get_script(session: Session, *, institution_id: int, script_id: int) -> MessageTemplate:
    """Return one call script of the institution, or ``NotFound``."""
    script = repository.get_script(session, institution_id=institution_id, script_id=script_id)
    if script is None:
        raise NotFound(f"no script {script_id}")
    return script


@dataclass(frozen=True, slots=True)
class ScriptSuggestion:
    """The script suggested for a case: its situation and why, the approved script rendered
    for the case and its guidance (or the reason none can be shown)."""

    case_id: int
    situation: ScriptSituation
    reason: rules.SuggestionReason
    locale: str
    script: MessageTemplate | None = None
    text: str | None = None
    guidance: list[str] = field(default_factory=list)
    # Why no text is shown: "no_script" (none approved for the situation and language) or
    # "not_rendered" (the script could not be used for this case; ``problem`` says why).
    missing: str | None = None
    problem: str | None = None


def suggest_script(
    session: Session,
    *,
    institution_id: int,
    case_id: int,
    locale: str,
    answered: Answered | None = None,
    last_outcome: str | None = None,
    agent_name: str = "",
    principal: Principal | None = None,
    now: datetime | None = None,
) -> ScriptSuggestion:
    """Suggest the approved script for a case and render it for the agent.

    The situation comes from the case's state, the debtor's last contact outcome (read from
    the contact log unless given) and who answered (``rules.suggest_situation``). The case
    is loaded as ``principal`` may see it (``NotFound`` otherwise).
    """
    if locale not in SCRIPT_LOCALES:
        raise ValidationFailed(
            f"locale: {locale!r} is not a script language; use zh-CN or en-US",
            errors=[{"field": "locale", "message": "use zh-CN or en-US"}],
        )
    if last_outcome is not None and last_outcome not in set(OutcomeCode):
        raise ValidationFailed(
            f"last_outcome: {last_outcome!r} is not an outcome code",
            errors=[{"field": "last_outcome", "message": "use an outcome code"}],
        )
    case = get_scoped(session, Case, case_id, acting(principal, institution_id))
    now = now or utcnow()
    if last_outcome is None:
        last_outcome = contact_repository.last_made_outcome(
            session, institution_id=institution_id, debtor_id=case.debtor_id
        )
    suggestion: Suggestion = rules.suggest_situation(
        Conversation(
            case_state=case.state,
            case_reason=case.reason,
            last_outcome=last_outcome,
            answered=answered,
            refusals=case.refusals,
            promise_broken=repository.promise_broken_since(
                session,
                institution_id=institution_id,
                debtor_id=case.debtor_id,
                since=now - BROKEN_PROMISE_WINDOW,
            ),
        )
    )
    result = ScriptSuggestion(
        case_id=case.id, situation=suggestion.situation, reason=suggestion.reason, locale=locale
    )
    candidates = repository.scripts(
        session,
        institution_id=institution_id,
        status=TemplateStatus.approved,
        situation=suggestion.situation.value,
        locale=locale,
    )
    if not candidates:
        return replace(result, missing="no_script")
    # The newest approved script of the situation is the one in use.
    script = max(candidates, key=lambda candidate: (candidate.reviewed_at or now, candidate.id))
    values = _render_values(
        session, institution_id=institution_id, case=case, locale=locale, agent_name=agent_name
    )
    try:
        text = _render_for_case(
            session, institution_id=institution_id, case=case, script=script, values=values
        )
    except RecoupError as error:
        return replace(
            result,
            script=script,
            guidance=guidance_points(script.guidance),
            missing="not_rendered",
            problem=error.message,
        )
    return replace(result, script=script, text=text, guidance=guidance_points(script.guidance))


def _render_values(
    session: Session, *, institution_id: int, case: Case, locale: str, agent_name: str
) -> dict[str, str]:
    """Return what a script may name: masked as the agent sees it, amounts formatted."""
    institution = institutions_repository.require_by_id(session, institution_id)
    debtor = session.get(Debtor, case.debtor_id)
    babel_locale = locale.replace("-", "_")
    balances = repository.case_balance(session, institution_id=institution_id, case_id=case.id)
    balance = "、".join(
        format_amount(total, currency, babel_locale) for currency, total in balances
    )
    commitment = repository.pending_commitment(
        session,
        institution_id=institution_id,
        debtor_id=case.debtor_id,
        today=local_today(institution.timezone),
    )
    name = mask_name(debtor.name) if debtor is not None else NOT_KNOWN
    return {
        "debtor_name": name,
        "person_name": name,
        "agent_name": agent_name or NOT_KNOWN,
        "institution_name": institution.name,
        "balance": balance or NOT_KNOWN,
        "promise_amount": (
            format_amount(commitment[0], commitment[1], babel_locale) if commitment else NOT_KNOWN
        ),
        "promise_due_date": commitment[2].isoformat() if commitment else NOT_KNOWN,
    }


def _render_for_case(
    session: Session,
    *,
    institution_id: int,
    case: Case,
    script: MessageTemplate,
    values: dict[str, str],
) -> str:
    """Render an approved script in the sandbox, refused for any time-barred account it
    would threaten suit on (US-SOL)."""
    account_ids = repository.case_account_ids(
        session, institution_id=institution_id, case_id=case.id
    )
    text = ""
    targets: list[int | None] = [*account_ids] or [None]
    for account_id in targets:
        text = templates_service.render_approved_template(
            session,
            institution_id=institution_id,
            template_id=script.id,
            values=values,
            account_id=account_id,
        )
    return text


# The comparison of scripts by what their conversations brought


@dataclass(frozen=True, slots=True)
class ScriptPerformance:
    """One script's outcomes over a period, with its rates."""

    script: MessageTemplate
    outcomes: ScriptOutcomes
    rates: rules.ScriptRates


def script_performance(
    session: Session, *, institution_id: int, since: date, until: date
) -> list[ScriptPerformance]:
    """Compare scripts by the contacts made with them from ``since`` up to ``until`` (exclusive).

    A contact's promise is the promise of the same debtor logged within a day after a
    contact with the outcome "promise made"; kept rate is kept ÷ resolved (kept, partially
    kept, broken) of those promises. A complaint is a case complaint recorded within a week
    after a contact with the script. Scripts used in no contact are listed with zeros.
    """
    if until <= since:
        raise ValidationFailed(
            "until: must be after since",
            errors=[{"field": "until", "message": "must be after since"}],
        )
    start = datetime.combine(since, time(0), tzinfo=UTC)
    end = datetime.combine(until, time(0), tzinfo=UTC)
    attempts = repository.scripted_attempts(
        session,
        institution_id=institution_id,
        since=start,
        until=end,
        right_party_codes=frozenset(code.value for code in RIGHT_PARTY_CODES),
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_debtor: dict[int, list[tuple[datetime, int, str | None]]] = defaultdict(list)
    for attempt in attempts:
        row = counts[attempt.script_id]
        row["attempts"] += 1
        row["right_party"] += attempt.right_party
        row["promises"] += attempt.outcome == OutcomeCode.PROMISE_MADE
        row["disputes"] += attempt.outcome == OutcomeCode.DISPUTE
        by_debtor[attempt.debtor_id].append(
            (attempt.started_at, attempt.script_id, attempt.outcome)
        )
    promises = repository.promises_after_scripts(
        session, institution_id=institution_id, since=start, until=end
    )
    for debtor_id, created_at, status in promises:
        script_id = _latest_before(
            by_debtor[debtor_id], created_at, PROMISE_WINDOW, OutcomeCode.PROMISE_MADE
        )
        if script_id is not None and status in RESOLVED_PROMISE_STATUSES:
            counts[script_id]["promises_resolved"] += 1
            counts[script_id]["promises_kept"] += status == KEPT
    complaints = repository.complaints_after_scripts(
        session, institution_id=institution_id, since=start, until=end
    )
    for debtor_id, at in complaints:
        script_id = _latest_before(by_debtor[debtor_id], at, COMPLAINT_WINDOW, None)
        if script_id is not None:
            counts[script_id]["complaints"] += 1
    result = []
    for script in repository.scripts(session, institution_id=institution_id):
        row = counts.get(script.id, {})
        outcomes = ScriptOutcomes(
            attempts=row.get("attempts", 0),
            right_party=row.get("right_party", 0),
            promises=row.get("promises", 0),
            promises_resolved=row.get("promises_resolved", 0),
            promises_kept=row.get("promises_kept", 0),
            disputes=row.get("disputes", 0),
            complaints=row.get("complaints", 0),
        )
        result.append(
            ScriptPerformance(script=script, outcomes=outcomes, rates=rules.script_rates(outcomes))
        )
    result.sort(key=lambda item: (-item.outcomes.attempts, item.script.id))
    return result


KEPT = "kept"
RESOLVED_PROMISE_STATUSES = frozenset({"kept", "partially_kept", "broken"})


def _latest_before(
    attempts: list[tuple[datetime, int, str | None]],
    moment: datetime,
    window: timedelta,
    outcome: str | None,
) -> int | None:
    """Return the script of the debtor's latest contact at most ``window`` before ``moment``
    (with ``outcome``, when given)."""
    moment = _aware(moment)
    index = bisect.bisect_right([_aware(at) for at, _script, _outcome in attempts], moment)
    for at, script_id, attempt_outcome in reversed(attempts[:index]):
        if moment - _aware(at) > window:
            return None
        if outcome is None or attempt_outcome == outcome:
            return script_id
    return None


def _aware(moment: datetime) -> datetime:
    """Read a stored instant as UTC (SQLite hands them back without a zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
