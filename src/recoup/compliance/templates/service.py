"""Templates and scripts: review, drafting, four-eyes approval, rendering, violations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.facts import service as facts_service
from recoup.compliance.facts.rules import (
    is_time_barred,
)
from recoup.compliance.rulepack import load_pack
from recoup.compliance.templates import repository
from recoup.compliance.templates.review import (
    ReviewInputError,
    ReviewResult,
    review,
    time_barred_threats,
    with_time_barred_check,
)
from recoup.compliance.templates.rules import (
    TemplateTransitionRefused,
    script_problem,
    template_transition,
)
from recoup.enums import ScriptSituation
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.institutions import repository as institutions_repository
from recoup.kit import events
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recoup.kit.text import require_text
from recoup.models.compliance import (
    ComplianceViolation,
    MessageTemplate,
    TemplateStatus,
    ViolationStatus,
)
from recoup.models.debtor import Debtor

RE_REVIEW_AFTER = timedelta(days=365)
_SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def review_text(
    *,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
    jurisdiction: str | None = None,
) -> ReviewResult:
    """Review a text for banned language and missing required elements.

    Without a jurisdiction the locale's pack applies (zh → CN, en → US); anything
    reviewed for an institution goes through ``review_for_institution`` instead.
    """
    try:
        return review(
            text,
            locale=locale,
            audience=audience,
            channel=channel,
            kind=kind,
            jurisdiction=jurisdiction,
        )
    except ReviewInputError as error:
        raise ValidationFailed(str(error)) from error


def review_for_institution(
    session: Session,
    *,
    institution_id: int,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
) -> ReviewResult:
    """Review a text under the institution's own rule pack, whatever language it is in."""
    institution = institutions_repository.require_by_id(session, institution_id)
    return review_text(
        text=text,
        locale=locale,
        audience=audience,
        channel=channel,
        kind=kind,
        # The review's lexicon is the country's: a regional pack reviews as its country does.
        jurisdiction=load_pack(str(institution.jurisdiction)).jurisdiction,
    )


def create_template(
    session: Session,
    *,
    institution_id: int,
    name: str,
    channel: str,
    locale: str,
    audience: str,
    body: str,
    author: str,
    author_id: int | None,
    kind: str | None = None,
    situation: str | None = None,
    guidance: str | None = None,
) -> MessageTemplate:
    """Add a draft template (a call script with its situation and guidance)."""
    name = require_text("name", name)
    body = require_text("body", body, multiline=True)
    guidance = _check_script_fields(
        kind=kind, situation=situation, guidance=guidance, channel=channel, audience=audience
    )
    review_text(text="", locale=locale, audience=audience, channel=channel)
    _require_parses(body)
    template = MessageTemplate(
        institution_id=institution_id,
        name=name,
        channel=channel,
        locale=locale,
        audience=audience,
        kind=kind,
        situation=ScriptSituation(situation) if situation else None,
        guidance=guidance,
        body=body,
        author=author,
        author_id=author_id,
        status=TemplateStatus.draft,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        actor=author,
        action="compliance.template_created",
        object_type="template",
        object_id=template.id,
        institution_id=institution_id,
        details={"name": name, "channel": channel},
    )
    return template


def _require_parses(body: str) -> None:
    try:
        _SANDBOX.parse(body)
    except TemplateError as error:
        raise ValidationFailed(
            f"the template does not parse: {error}",
            message_key="compliance.error.template_syntax",
            message_params={"detail": str(error)},
        ) from error


def _check_script_fields(
    *, kind: str | None, situation: str | None, guidance: str | None, channel: str, audience: str
) -> str | None:
    """Refuse script fields that do not fit the kind; return the guidance as it is stored."""
    guidance = require_text("guidance", guidance, multiline=True).strip() if guidance else None
    problem = script_problem(
        kind=kind, situation=situation, guidance=guidance, channel=channel, audience=audience
    )
    if problem is not None:
        field, message = problem
        raise ValidationFailed(
            f"{field}: {message}",
            message_key=f"compliance.error.script_{field}",
            errors=[{"field": field, "message": message}],
        )
    return guidance


def review_template_texts(session: Session, *, template: MessageTemplate) -> ReviewResult:
    """Review a template's text and, for a script, its guidance; guidance findings say so.

    The guidance is reviewed as if it were said to the script's audience: an agent reads it
    during the conversation, so it must not tell them to threaten, shame or disclose.
    """
    arguments: dict[str, Any] = {
        "institution_id": template.institution_id,
        "locale": template.locale,
        "audience": template.audience,
        "channel": template.channel,
        "kind": template.kind,
    }
    result = review_for_institution(session, text=template.body, **arguments)
    if not template.guidance:
        return result
    guidance = review_for_institution(session, text=template.guidance, **arguments)
    findings = (*result.findings, *(replace(f, field="guidance") for f in guidance.findings))
    return ReviewResult(passed=result.passed and guidance.passed, findings=findings)


def _template(session: Session, *, institution_id: int, template_id: int) -> MessageTemplate:
    template = repository.get_template(
        session, institution_id=institution_id, template_id=template_id
    )
    if template is None:
        raise NotFound(f"no template {template_id}")
    return template


def _findings(result: ReviewResult) -> list[dict[str, Any]]:
    return [
        {
            "category": f.category,
            "rule_id": f.rule_id,
            "start": f.start,
            "end": f.end,
            "text": f.text,
            "message_en": f.message_en,
            "message_zh": f.message_zh,
            "field": f.field,
        }
        for f in result.findings
    ]


def _transition(
    session: Session,
    *,
    template: MessageTemplate,
    action: str,
    actor: str,
    actor_id: int | None,
    review_passed: bool,
) -> None:
    try:
        status = template_transition(
            action=action,
            status=str(template.status),
            author_id=template.author_id,
            reviewer_id=actor_id,
            review_passed=review_passed,
        )
    except TemplateTransitionRefused as error:
        detail = str(error)
        if action == "approve" and not review_passed:
            # Name what is wrong (a missing validation-notice element, banned words …).
            named = [f["message_en"] for f in template.findings or [] if f.get("message_en")]
            if named:
                detail = f"{detail}: " + " ".join(named[:8])
        raise Conflict(detail) from error
    template.status = TemplateStatus(status)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"compliance.template_{status}",
        object_type="template",
        object_id=template.id,
        institution_id=template.institution_id,
        details={"findings": len(template.findings or [])},
    )


def submit_template(
    session: Session, *, institution_id: int, template_id: int, actor: str, actor_id: int | None
) -> MessageTemplate:
    """Run the review and send the template to a compliance officer."""
    template = _template(session, institution_id=institution_id, template_id=template_id)
    result = review_template_texts(session, template=template)
    template.findings = _findings(result)
    template.submitted_at = utcnow()
    _transition(
        session,
        template=template,
        action="submit",
        actor=actor,
        actor_id=actor_id,
        review_passed=True,
    )
    return template


def decide_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    approve: bool,
    actor: str,
    actor_id: int | None,
    note: str | None = None,
    today: date | None = None,
) -> MessageTemplate:
    """Approve or reject a submitted template: four eyes, and only a clean text is approved."""
    note = require_text("note", note) if note else note
    template = _template(session, institution_id=institution_id, template_id=template_id)
    result = review_template_texts(session, template=template)
    template.findings = _findings(result)
    template.reviewer = actor
    template.reviewer_id = actor_id
    template.reviewed_at = utcnow()
    template.review_note = note
    if approve:
        template.re_review_on = (today or utcnow().date()) + RE_REVIEW_AFTER
    _transition(
        session,
        template=template,
        action="approve" if approve else "reject",
        actor=actor,
        actor_id=actor_id,
        review_passed=result.passed,
    )
    if template.status == TemplateStatus.approved:
        events.emit(
            session,
            institution_id=institution_id,
            type="template.approved",
            data={"template_id": template.id, "channel": str(template.channel)},
        )
    return template


def render_approved_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    values: Mapping[str, Any],
    today: date | None = None,
    account_id: int | None = None,
) -> str:
    """Render an approved, not overdue template in the sandbox; anything else is refused.

    Rendered for an account whose statute of limitations has run out (US-SOL), a text
    threatening suit is refused too.
    """
    template = _template(session, institution_id=institution_id, template_id=template_id)
    if template.status != TemplateStatus.approved:
        raise PermissionDenied(f"template {template_id} is {template.status}, not approved")
    if template.re_review_on is not None and template.re_review_on < (today or utcnow().date()):
        raise PermissionDenied(
            f"template {template_id} was due for re-review on {template.re_review_on}"
        )
    try:
        text = _SANDBOX.from_string(template.body).render(**values)
    except TemplateError as error:
        raise ValidationFailed(f"template {template_id} could not be rendered: {error}") from error
    if account_id is not None:
        _refuse_time_barred_threats(
            session,
            institution_id=institution_id,
            account_id=account_id,
            template_id=template_id,
            text=text,
            today=today,
        )
    return text


@dataclass(frozen=True, slots=True)
class Rendered:
    """One text of a bulk render: the text, or why it was refused (``render_failed``,
    ``time_barred_threat``)."""

    text: str | None
    refused: str | None = None


def render_many(
    template: MessageTemplate,
    *,
    values: Sequence[Mapping[str, Any]],
    time_barred: Sequence[bool],
    today: date,
) -> list[Rendered]:
    """Render one approved, not overdue template for many recipients (compiled once).

    ``time_barred[i]`` says whether recipient ``i``'s account is past its statute of
    limitations: a text threatening suit for it is refused (US-SOL), as one at a time.
    A template that is not approved, or overdue for re-review, is refused whole.
    """
    if template.status != TemplateStatus.approved:
        raise PermissionDenied(f"template {template.id} is {template.status}, not approved")
    if template.re_review_on is not None and template.re_review_on < today:
        raise PermissionDenied(
            f"template {template.id} was due for re-review on {template.re_review_on}"
        )
    try:
        compiled = _SANDBOX.from_string(template.body)
    except TemplateError as error:
        raise ValidationFailed(f"template {template.id} could not be rendered: {error}") from error
    out: list[Rendered] = []
    for each, barred in zip(values, time_barred, strict=True):
        try:
            text = compiled.render(**each)
        except TemplateError:
            out.append(Rendered(None, "render_failed"))
            continue
        if barred and time_barred_threats(text):
            out.append(Rendered(None, "time_barred_threat"))
            continue
        out.append(Rendered(text))
    return out


def _refuse_time_barred_threats(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    template_id: int,
    text: str,
    today: date | None,
) -> None:
    account = facts_service.institution_account(session, institution_id, account_id)
    today = today or facts_service.institution_today(session, institution_id=institution_id)
    if not is_time_barred(account.time_barred_on, today=today):
        return
    threats = time_barred_threats(text)
    if threats:
        raise PermissionDenied(
            f"US-SOL: account {account.external_id} is time-barred since "
            f"{account.time_barred_on}; template {template_id} threatens suit "
            f"({', '.join(sorted({finding.text for finding in threats}))}). "
            "Use a template without lawsuit language.",
            rule_id="US-SOL",
            findings=[
                {"rule_id": f.rule_id, "start": f.start, "end": f.end, "text": f.text}
                for f in threats
            ],
        )


# Violations


def scan_for_violations(
    session: Session,
    *,
    institution_id: int,
    text: str,
    locale: str,
    source: str,
    source_id: str | None,
    debtor_id: int | None,
    actor: str | None,
    principal: Principal | None = None,
) -> list[ComplianceViolation]:
    """Scan an agent's note or transcript after the fact and queue every hit.

    The debtor named, if any, must be one ``principal`` may see (``NotFound`` otherwise).
    """
    if debtor_id is not None:
        get_scoped(session, Debtor, debtor_id, acting(principal, institution_id))
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=text,
        locale=locale,
        audience="debtor",
        channel="call",
    )
    rows = [
        ComplianceViolation(
            institution_id=institution_id,
            source=source,
            source_id=source_id,
            debtor_id=debtor_id,
            actor=actor,
            category=finding.category,
            rule_id=finding.rule_id,
            excerpt=text[max(0, finding.start - 20) : finding.end + 20][:255],
            start=finding.start,
            end=finding.end,
        )
        for finding in result.findings
        if finding.end > finding.start
    ]
    session.add_all(rows)
    session.flush()
    return rows


def resolve_violation(
    session: Session,
    *,
    institution_id: int,
    violation_id: int,
    confirmed: bool,
    actor: str,
    note: str | None = None,
) -> ComplianceViolation:
    """Confirm or dismiss a queued violation."""
    note = require_text("note", note) if note else note
    violation = repository.get_violation(
        session, institution_id=institution_id, violation_id=violation_id
    )
    if violation is None:
        raise NotFound(f"no violation {violation_id}")
    if violation.status != ViolationStatus.open:
        raise Conflict(
            f"violation {violation_id} is already {violation.status}",
            message_key="compliance.error.violation_closed",
        )
    violation.status = ViolationStatus.confirmed if confirmed else ViolationStatus.dismissed
    violation.resolved_by = actor
    violation.resolved_at = utcnow()
    violation.resolution_note = note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"compliance.violation_{violation.status}",
        object_type="compliance_violation",
        object_id=violation.id,
        institution_id=institution_id,
    )
    return violation


def update_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    name: str,
    channel: str,
    locale: str,
    audience: str,
    body: str,
    actor: str,
    actor_id: int | None,
    situation: str | None = None,
    guidance: str | None = None,
) -> MessageTemplate:
    """Change a draft or rejected template; a submitted or approved one must be rejected first.

    A script keeps its kind; its situation and guidance change with its text.
    """
    name = require_text("name", name)
    body = require_text("body", body, multiline=True)
    template = _template(session, institution_id=institution_id, template_id=template_id)
    if template.status not in {TemplateStatus.draft, TemplateStatus.rejected}:
        raise Conflict(
            f"a {template.status} template cannot be edited; it must be draft or rejected",
            message_key="compliance.error.template_locked",
        )
    if template.author_id is not None and actor_id is not None and template.author_id != actor_id:
        raise PermissionDenied(
            "only the author edits a template; draft a new one instead",
            message_key="compliance.error.not_author",
        )
    guidance = _check_script_fields(
        kind=template.kind,
        situation=situation,
        guidance=guidance,
        channel=channel,
        audience=audience,
    )
    review_text(text="", locale=locale, audience=audience, channel=channel)
    _require_parses(body)
    template.situation = ScriptSituation(situation) if situation else None
    template.guidance = guidance
    template.name = name
    template.channel = channel
    template.locale = locale
    template.audience = audience
    template.body = body
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="compliance.template_updated",
        object_type="template",
        object_id=template.id,
        institution_id=institution_id,
        details={"name": name, "channel": channel},
    )
    return template


def review_for_account(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
    today: date | None = None,
) -> ReviewResult:
    """Review a text meant for one account: the usual review plus US-SOL when time-barred."""
    account = facts_service.institution_account(session, institution_id, account_id)
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=text,
        locale=locale,
        audience=audience,
        channel=channel,
        kind=kind,
    )
    today = today or facts_service.institution_today(session, institution_id=institution_id)
    if is_time_barred(account.time_barred_on, today=today):
        return with_time_barred_check(result, text)
    return result
