"""Compliance pages: rule pack and policy, template review, decisions, violations, certificates."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.certifications.rules import CERTIFICATE_EXPIRY_WARNING_DAYS
from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.facts import repository as facts_repository
from recoup.compliance.facts import service as facts_service
from recoup.compliance.facts.rules import InconvenientPlace
from recoup.compliance.gate import repository as gate_repository
from recoup.compliance.kinds import RuleKind
from recoup.compliance.policy import repository as policy_repository
from recoup.compliance.policy import service as policy_service
from recoup.compliance.policy.rules import POLICY_BOUNDS, Policy, policy_document
from recoup.compliance.rulepack import RulePack, load_pack
from recoup.compliance.templates import repository as templates_repository
from recoup.compliance.templates import service as templates_service
from recoup.compliance.templates.review import default_reviewer
from recoup.compliance.templates.rules import SCRIPT_CHANNELS as SCRIPT_CHANNEL_SET
from recoup.compliance.templates.rules import script_audience
from recoup.contact.channels import OUTBOUND_CHANNELS, REAL_TIME_CHANNELS, Channel
from recoup.contact.rules import Party
from recoup.deps import SessionDep
from recoup.enums import SCRIPT_KIND, ScriptSituation
from recoup.identity.dependencies import csrf_protect
from recoup.identity.scoping import get_scoped
from recoup.kit import clock
from recoup.kit.clock import start_of_day
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.compliance import (
    ComplianceViolation,
    MessageTemplate,
    TemplateStatus,
    ViolationStatus,
)
from recoup.models.debtor import Debtor
from recoup.models.identity import User
from recoup.models.institution import Institution
from recoup.web import labels
from recoup.web.localization import LOCALES, translate
from recoup.web.templating import (
    Flash,
    PostedForm,
    Viewer,
    page_url_for,
    redirect,
    render,
    viewer_with,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadCompliance = Annotated[Viewer, viewer_with("compliance:read")]
ManagePolicy = Annotated[Viewer, viewer_with("policy:manage")]
ReadTemplates = Annotated[Viewer, viewer_with("templates:read")]
WriteTemplates = Annotated[Viewer, viewer_with("templates:write")]
ReviewTemplates = Annotated[Viewer, viewer_with("templates:review")]
ApproveTemplates = Annotated[Viewer, viewer_with("templates:approve")]
CsrfChecked = Depends(csrf_protect)

TEMPLATE_LOCALES = ("zh-CN", "en-US")
TEMPLATE_STATUSES = tuple(status.value for status in TemplateStatus)
VIOLATION_STATUSES = tuple(status.value for status in ViolationStatus)
CHANNELS = tuple(channel.value for channel in Channel if channel in OUTBOUND_CHANNELS)
AUDIENCES = tuple(party.value for party in Party)
SCRIPT_CHANNELS = tuple(channel for channel in CHANNELS if channel in SCRIPT_CHANNEL_SET)
SCRIPT_SITUATIONS = tuple(situation.value for situation in ScriptSituation)
HOLIDAY_MODES = tuple(mode.value for mode in HolidaySuppression)
VOICE_HOURS_CHANNELS = tuple(sorted(channel.value for channel in REAL_TIME_CHANNELS))
CERTIFICATE_YEAR_DAYS = 365
# How many characters of context the violation excerpt keeps before the match (see the service).
EXCERPT_CONTEXT = 20
_PLACEHOLDER = re.compile(r"\{[^{}]+\}")
# Policy fields whose pack bound is a rule parameter, found by the rule's kind.
_PACK_BOUNDS = {bound.field: bound for bound in POLICY_BOUNDS}
# The policy form's voice call cap: whichever of these the pack bounds.
_VOICE_CAP_FIELDS = ("max_effective_voice_calls_per_day", "max_calls_per_debt_in_window")


# Shared helpers


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    institution_id = viewer.principal.institution_id
    institution = session.get(Institution, institution_id) if institution_id else None
    if institution is None:
        raise NotFound("compliance pages belong to an institution; sign in as one of its users")
    return institution


def _today(viewer: Viewer) -> date:
    return clock.local_today(viewer.timezone)


def _chinese(viewer: Viewer) -> bool:
    return viewer.locale == "zh-CN"


def _refused(viewer: Viewer, path: str, error: RecoupError) -> Response:
    words = labels.refusal(error, viewer.locale, lead=False)
    message = Flash("compliance.flash.refused", level="error", params={"message": words})
    return redirect(path, request=viewer.request, message=message)


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of a reviewed text and the findings (category, rule id) that cover it."""

    text: str
    marks: tuple[tuple[str, str], ...]


def highlight(text: str, spans: Iterable[tuple[int, int, str, str]]) -> list[Segment]:
    """Cut ``text`` into runs so each finding span ``(start, end, category, rule_id)`` is marked."""
    kept = [(start, end, category, rule) for start, end, category, rule in spans if end > start]
    cuts = sorted({0, len(text), *(p for s, e, _, _ in kept for p in (s, e) if p <= len(text))})
    segments: list[Segment] = []
    for left, right in pairwise(cuts):
        marks = tuple(
            dict.fromkeys((category, rule) for s, e, category, rule in kept if s <= left < e)
        )
        if segments and segments[-1].marks == marks:
            segments[-1] = Segment(segments[-1].text + text[left:right], marks)
        else:
            segments.append(Segment(text[left:right], marks))
    return segments


def _category_name(category: str, viewer: Viewer) -> str:
    known = default_reviewer().categories.get(category)
    if known is None:
        return category
    return known.name_zh if _chinese(viewer) else known.name_en


def _category_names(viewer: Viewer) -> dict[str, str]:
    return {key: _category_name(key, viewer) for key in default_reviewer().categories}


# Overview: rule pack and policy


def _pack_rules(pack: RulePack, viewer: Viewer) -> list[dict[str, Any]]:
    chinese = _chinese(viewer)
    return [
        {
            "id": rule.id,
            "kind": rule.kind,
            "source": rule.source,
            "title": rule.title.zh if chinese else rule.title.en,
            "citation": rule.citation,
            "parameters": [
                {
                    "name": name,
                    "label": labels.parameter_name(name, viewer.locale),
                    "value": _parameter_words(name, value, viewer.locale),
                }
                for name, value in rule.parameters.items()
            ],
            "messages": [
                _PLACEHOLDER.sub("…", text.zh if chinese else text.en)
                for text in rule.messages.values()
            ],
        }
        for rule in pack.rules
    ]


def _parameter_words(name: str, value: Any, locale: str) -> str:
    # Keywords a debtor writes to revoke consent are matched as written, so show them quoted.
    if name.endswith("keywords") and isinstance(value, list | tuple):
        return "、".join(f"“{item}”" for item in value)
    return labels.parameter_value(value, locale)


def _hours_rule(pack: RulePack) -> str | None:
    """Return the hours rule that bounds calls the most: the one the policy form answers to."""
    calling = [
        rule
        for rule in pack.rules_of(RuleKind.CONTACT_HOURS)
        if Channel.CALL.value in pack.names_parameter(rule.id, "channels")
    ]
    if not calling:
        return None
    # The earliest end binds first; on a tie, the latest start.
    return min(
        calling,
        key=lambda rule: (
            pack.time_parameter(rule.id, "end"),
            -pack.time_parameter(rule.id, "start").hour * 60
            - pack.time_parameter(rule.id, "start").minute,
        ),
    ).id


def _pack_bound(field: str, pack: RulePack, locale: str) -> tuple[str, str] | None:
    if field == "hours":
        rule_id = _hours_rule(pack)
        if rule_id is None:
            return None
        start, end = pack.parameter(rule_id, "start"), pack.parameter(rule_id, "end")
        return rule_id, f"{start}–{end}"
    bound = _PACK_BOUNDS.get(field)
    rule = None if bound is None else pack.rule_of(bound.kind)
    if bound is None or rule is None or bound.parameter not in rule.parameters:
        return None
    return rule.id, labels.parameter_value(pack.parameter(rule.id, bound.parameter), locale)


def _policy_value(field: str, value: Any, locale: str) -> str | bool:
    if isinstance(value, bool):
        return value
    if field == "hours":
        return "; ".join(
            f"{labels.channels(item['channels'], locale)} {item['start']}–{item['end']}"
            for item in value
        )
    if field == "channel_caps":
        return "; ".join(
            translate(
                locale,
                "compliance.policy.cap",
                channels=labels.channels(item["channels"], locale),
                limit=item["limit"],
                days=item["days"],
            )
            for item in value
        )
    return labels.parameter_value(value, locale)


def _overrides(policy: Policy, pack: RulePack, locale: str) -> list[dict[str, Any]]:
    document = policy_document(policy)
    defaults = policy_document(Policy())
    rows = []
    for field, value in document.items():
        if field in {"name", "version"} or value == defaults.get(field):
            continue
        bound = _pack_bound(field, pack, locale)
        rows.append(
            {
                "field": field,
                "value": _policy_value(field, value, locale),
                "rule_id": bound[0] if bound else None,
                "pack_value": bound[1] if bound else None,
            }
        )
    return rows


def _voice_cap_field(pack: RulePack) -> str | None:
    return next(
        (field for field in _VOICE_CAP_FIELDS if pack.rule_of(_PACK_BOUNDS[field].kind)), None
    )


def _policy_form(policy: Policy, pack: RulePack) -> dict[str, str]:
    document = policy_document(policy)
    voice = next((item for item in document["hours"] if "call" in item["channels"]), None)
    sms = next(
        (
            cap
            for cap in document["channel_caps"]
            if cap["channels"] == ["sms"] and cap["days"] == 1
        ),
        None,
    )
    cap_field = _voice_cap_field(pack)
    cap = document.get(cap_field) if cap_field else None
    return {
        "name": policy.name,
        "voice_start": voice["start"] if voice else "",
        "voice_end": voice["end"] if voice else "",
        "voice_cap": "" if cap is None else str(cap),
        "sms_cap": "" if sms is None else str(sms["limit"]),
        "holiday_suppression": document["holiday_suppression"],
    }


def _number(value: str, label: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed(f"{label} must be a whole number, not {text!r}") from None


def _proposed_document(policy: Policy, pack: RulePack, form: Mapping[str, str]) -> dict[str, Any]:
    """Apply the policy form to the policy in force; fields left blank keep or drop a limit."""
    document = policy_document(policy)
    name = form["name"].strip()
    # The form shows a preset's name in the reader's language: kept as it is, it stays the preset's.
    if not name or name in {labels.policy_name(policy.name, locale) for locale in LOCALES}:
        name = policy.name
    document["name"] = name
    hours = [item for item in document["hours"] if "call" not in item["channels"]]
    if form["voice_start"] or form["voice_end"]:
        hours.append(
            {
                "channels": list(VOICE_HOURS_CHANNELS),
                "start": form["voice_start"] or "00:00",
                "end": form["voice_end"] or "23:59",
            }
        )
    document["hours"] = hours
    cap_field = _voice_cap_field(pack)
    if cap_field is not None:
        document[cap_field] = _number(form["voice_cap"], "the voice call limit")
    caps = [
        cap
        for cap in document["channel_caps"]
        if not (cap["channels"] == ["sms"] and cap["days"] == 1)
    ]
    sms_cap = _number(form["sms_cap"], "the text message limit")
    if sms_cap is not None:
        caps.append({"channels": ["sms"], "limit": sms_cap, "days": 1})
    document["channel_caps"] = caps
    if form["holiday_suppression"] in HOLIDAY_MODES:
        document["holiday_suppression"] = form["holiday_suppression"]
    return document


def _overview(
    viewer: Viewer,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    refusal: list[dict[str, str]] | None = None,
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    pack = load_pack(str(institution.jurisdiction))
    policy = policy_service.institution_policy(session, institution=institution)
    approved = policy_repository.latest_approved_policy(session, institution_id=institution.id)
    team_lead_id = viewer.principal.user_id if viewer.principal.role == "team_lead" else None
    roster = certifications_service.certification_roster(
        session, institution_id=institution.id, today=_today(viewer), team_lead_id=team_lead_id
    )
    context: dict[str, Any] = {
        "pack": {
            "code": pack.code,
            "version": pack.version,
            "title": pack.title.zh if _chinese(viewer) else pack.title.en,
            "timezone": labels.zone_name(pack.default_timezone, viewer.locale),
            "rules": _pack_rules(pack, viewer),
        },
        "policy": {
            "name": labels.policy_name(policy.name, viewer.locale),
            "version": policy.version,
            "approved": approved,
            "overrides": _overrides(policy, pack, viewer.locale),
        },
        "pending": policy_repository.pending_policies(session, institution_id=institution.id),
        "form": form or _policy_form(policy, pack),
        "voice_cap_field": _voice_cap_field(pack),
        "hours_rule": _hours_rule(pack),
        "holiday_modes": HOLIDAY_MODES,
        "refusal": refusal or [],
        "form_error": form_error,
        "counts": {
            "submitted": len(
                templates_repository.templates(
                    session, institution_id=institution.id, status=TemplateStatus.submitted
                )
            ),
            "open_violations": len(
                templates_repository.violations(
                    session, institution_id=institution.id, status=ViolationStatus.open
                )
            ),
            "blocked": gate_repository.decisions_log_page(
                session, institution_id=institution.id, page=PageRequest(1, 1), allowed=False
            ).total,
        },
        "attention": [row for row in roster if row.standing in {"expiring", "expired"}],
        "team_only": team_lead_id is not None,
    }
    return render(
        viewer,
        "compliance/overview.html",
        context,
        active_nav="compliance",
        status_code=status_code,
    )


@router.get("/compliance", response_class=HTMLResponse)
def overview(viewer: ReadCompliance, session: SessionDep) -> HTMLResponse:
    """Show the institution's rule pack, the policy in force, proposals and what needs a look."""
    return _overview(viewer, session)


@router.post("/compliance/policies", response_class=HTMLResponse, dependencies=[CsrfChecked])
def propose_policy(
    viewer: ManagePolicy,
    session: SessionDep,
    name: Annotated[str, Form(max_length=128)],
    voice_start: Annotated[str, Form(max_length=8)] = "",
    voice_end: Annotated[str, Form(max_length=8)] = "",
    voice_cap: Annotated[str, Form(max_length=6)] = "",
    sms_cap: Annotated[str, Form(max_length=6)] = "",
    holiday_suppression: Annotated[str, Form(max_length=32)] = "off",
) -> Response:
    """Propose a policy version; one looser than the pack is refused naming the rule."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    pack = load_pack(str(institution.jurisdiction))
    form = {
        "name": name,
        "voice_start": voice_start,
        "voice_end": voice_end,
        "voice_cap": voice_cap,
        "sms_cap": sms_cap,
        "holiday_suppression": holiday_suppression,
    }
    document: dict[str, Any] = {}
    try:
        policy = policy_service.institution_policy(session, institution=institution)
        document = _proposed_document(policy, pack, form)
        row = policy_service.propose_policy(
            session, institution_id=institution.id, document=document, actor=viewer.principal.actor
        )
    except ValidationFailed as error:
        session.rollback()  # the page shown below must not read the refused change
        problems = (
            policy_service.policy_problems(
                session, institution_id=institution.id, document=document
            )
            if document and "violations" in error.extra
            else []
        )
        refusal = [
            {
                "rule_id": problem.rule_id,
                "field": problem.field,
                "message": problem.message.zh if _chinese(viewer) else problem.message.en,
            }
            for problem in problems
        ]
        return _overview(
            viewer,
            session,
            form=form,
            refusal=refusal,
            form_error="" if refusal else labels.refusal(error, viewer.locale),
            status_code=422,
        )
    message = Flash("compliance.flash.policy_proposed", params={"version": str(row.version)})
    return redirect("/compliance#proposals", request=viewer.request, message=message)


@router.post("/compliance/policies/{version}/approve", dependencies=[CsrfChecked])
def approve_policy(viewer: ManagePolicy, session: SessionDep, version: RowId) -> Response:
    """Put a proposed policy version in force; its proposer cannot (four eyes)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        policy_service.approve_policy(
            session, institution_id=institution.id, version=version, actor=viewer.principal.actor
        )
    except RecoupError as error:
        return _refused(viewer, "/compliance#proposals", error)
    message = Flash("compliance.flash.policy_approved", params={"version": str(version)})
    return redirect("/compliance", request=viewer.request, message=message)


# Templates and scripts


def _review_context(
    viewer: Viewer, session: Session, *, text: str, locale: str, audience: str, channel: str
) -> dict[str, Any]:
    try:
        result = templates_service.review_for_institution(
            session,
            institution_id=_institution(session, viewer).id,
            text=text,
            locale=locale,
            audience=audience,
            channel=channel,
        )
    except ValidationFailed as error:
        return {
            "review_error": labels.refusal(error, viewer.locale),
            "segments": [],
            "findings": [],
            "missing": [],
        }
    chinese = _chinese(viewer)
    findings = [
        {
            "category": finding.category,
            "category_name": _category_name(finding.category, viewer),
            "rule_id": finding.rule_id,
            "text": finding.text,
            "start": finding.start,
            "message": _without_rule_id(
                finding.message_zh if chinese else finding.message_en, finding.rule_id
            ),
        }
        for finding in result.findings
    ]
    spans = [(f.start, f.end, f.category, f.rule_id) for f in result.findings]
    return {
        "review_error": "",
        "passed": result.passed,
        "has_text": bool(text.strip()),
        "segments": highlight(text, spans),
        "findings": [f for f in findings if f["category"] != "missing_element"],
        "missing": [f for f in findings if f["category"] == "missing_element"],
        "category_names": _category_names(viewer),
    }


def _without_rule_id(message: str, rule_id: str) -> str:
    """Drop the rule id a finding message starts with; the page shows it as a badge."""
    return message.removeprefix(rule_id).lstrip(" :：") or message


def _stored_review(viewer: Viewer, session: Session, template: MessageTemplate) -> dict[str, Any]:
    context = _review_context(
        viewer,
        session,
        text=template.body,
        locale=template.locale,
        audience=template.audience,
        channel=template.channel,
    )
    context["guidance_points"] = [
        line.strip() for line in (template.guidance or "").splitlines() if line.strip()
    ]
    context["guidance_findings"] = []
    if template.guidance:
        # A script's guidance is reviewed as its text is; a finding there fails it too.
        guidance = _review_context(
            viewer,
            session,
            text=template.guidance,
            locale=template.locale,
            audience=template.audience,
            channel=template.channel,
        )
        context["guidance_findings"] = guidance["findings"] + guidance["missing"]
        context["passed"] = context.get("passed", False) and guidance.get("passed", False)
    return context


def _editor(
    viewer: Viewer,
    session: Session,
    *,
    template: MessageTemplate | None,
    form: dict[str, str],
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "template": template,
        "form": form,
        "form_error": form_error,
        "channels": SCRIPT_CHANNELS if form.get("kind") == SCRIPT_KIND else CHANNELS,
        "audiences": AUDIENCES,
        "locales": TEMPLATE_LOCALES,
        "situations": SCRIPT_SITUATIONS,
        **_review_context(
            viewer,
            session,
            text=form["body"],
            locale=form["locale"],
            audience=form["audience"],
            channel=form["channel"],
        ),
    }
    return render(
        viewer,
        "compliance/template_editor.html",
        context,
        active_nav="compliance",
        status_code=status_code,
    )


def _template_form(
    template: MessageTemplate | None, viewer: Viewer, *, kind: str = "", situation: str = ""
) -> dict[str, str]:
    if template is None:
        script = kind == SCRIPT_KIND
        situation = situation if situation in SCRIPT_SITUATIONS else SCRIPT_SITUATIONS[0]
        return {
            "name": "",
            "channel": "call" if script else "sms",
            "locale": "zh-CN" if _chinese(viewer) else "en-US",
            "audience": (script_audience(ScriptSituation(situation)).value if script else "debtor"),
            "body": "",
            "kind": SCRIPT_KIND if script else "",
            "situation": situation if script else "",
            "guidance": "",
        }
    return {
        "name": template.name,
        "channel": template.channel,
        "locale": template.locale,
        "audience": template.audience,
        "body": template.body,
        "kind": template.kind or "",
        "situation": template.situation or "",
        "guidance": template.guidance or "",
    }


def _get_template(session: Session, viewer: Viewer, template_id: int) -> MessageTemplate:
    institution = _institution(session, viewer)
    template = templates_repository.get_template(
        session, institution_id=institution.id, template_id=template_id
    )
    if template is None:
        raise NotFound(f"no template {template_id}")
    return template


def _editable_by(template: MessageTemplate, viewer: Viewer) -> bool:
    assert viewer.principal is not None
    return (
        viewer.allows("templates:write")
        and template.status in {TemplateStatus.draft, TemplateStatus.rejected}
        and (template.author_id is None or template.author_id == viewer.principal.user_id)
    )


@router.get("/compliance/templates", response_class=HTMLResponse)
def template_list(
    viewer: ReadTemplates,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """List templates by workflow status; the submitted ones form the review queue."""
    institution = _institution(session, viewer)
    wanted = status if status in TEMPLATE_STATUSES else None
    templates = templates_repository.templates(
        session, institution_id=institution.id, status=wanted
    )
    queue = [
        {"template": template, **_stored_review(viewer, session, template)}
        for template in templates
        if wanted == "submitted"
    ]
    context: dict[str, Any] = {
        "templates": list(reversed(templates)),
        "queue": queue,
        "status": wanted or "",
        "statuses": TEMPLATE_STATUSES,
        "category_names": _category_names(viewer),
    }
    return render(viewer, "compliance/templates.html", context, active_nav="compliance")


@router.get("/compliance/templates/new", response_class=HTMLResponse)
def new_template(
    viewer: WriteTemplates,
    session: SessionDep,
    kind: Annotated[str, Query(max_length=32)] = "",
    situation: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    """Open an empty template editor; ``kind=script`` opens a call script for a situation."""
    _institution(session, viewer)
    form = _template_form(None, viewer, kind=kind, situation=situation)
    return _editor(viewer, session, template=None, form=form)


@router.post(
    "/compliance/templates/review", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def review_template(
    viewer: ReviewTemplates,
    session: SessionDep,
    body: Annotated[str, Form(max_length=20_000)] = "",
    locale: Annotated[str, Form(max_length=16)] = "zh-CN",
    audience: Annotated[str, Form(max_length=16)] = "debtor",
    channel: Annotated[str, Form(max_length=16)] = "sms",
) -> HTMLResponse:
    """Review the editor's text as it is typed: the text with findings marked and the list."""
    context = _review_context(
        viewer, session, text=body, locale=locale, audience=audience, channel=channel
    )
    return render(viewer, "compliance/_review.html", context, partial=True)


@router.post("/compliance/templates", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_template(
    viewer: WriteTemplates,
    session: SessionDep,
    name: Annotated[str, Form(max_length=128)] = "",
    channel: Annotated[str, Form(max_length=16)] = "sms",
    locale: Annotated[str, Form(max_length=16)] = "zh-CN",
    audience: Annotated[str, Form(max_length=16)] = "debtor",
    body: Annotated[str, Form(max_length=20_000)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
    situation: Annotated[str, Form(max_length=32)] = "",
    guidance: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Save a new draft template (or call script) and open it."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    form = {
        "name": name,
        "channel": channel,
        "locale": locale,
        "audience": audience,
        "body": body,
        "kind": kind,
        "situation": situation,
        "guidance": guidance,
    }
    try:
        if not name.strip() or not body.strip():
            raise ValidationFailed(viewer.text("compliance.templates.name_and_body_required"))
        template = templates_service.create_template(
            session,
            institution_id=institution.id,
            name=name.strip(),
            channel=channel,
            locale=locale,
            audience=audience,
            body=body,
            author=viewer.principal.actor,
            author_id=viewer.principal.user_id,
            kind=kind or None,
            situation=situation or None,
            guidance=guidance or None,
        )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        return _editor(
            viewer,
            session,
            template=None,
            form=form,
            form_error=labels.refusal(error, viewer.locale),
            status_code=422,
        )
    message = Flash("compliance.flash.template_saved", params={"name": template.name})
    return redirect(f"/compliance/templates/{template.id}", request=viewer.request, message=message)


@router.get("/compliance/templates/{template_id}", response_class=HTMLResponse)
def template_detail(viewer: ReadTemplates, session: SessionDep, template_id: RowId) -> HTMLResponse:
    """Open a template: the editor while it is the author's draft, its review record otherwise."""
    template = _get_template(session, viewer, template_id)
    if _editable_by(template, viewer):
        return _editor(viewer, session, template=template, form=_template_form(template, viewer))
    context: dict[str, Any] = {"template": template, **_stored_review(viewer, session, template)}
    return render(viewer, "compliance/template_detail.html", context, active_nav="compliance")


@router.post(
    "/compliance/templates/{template_id}", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def save_template(
    viewer: WriteTemplates,
    session: SessionDep,
    template_id: RowId,
    name: Annotated[str, Form(max_length=128)] = "",
    channel: Annotated[str, Form(max_length=16)] = "sms",
    locale: Annotated[str, Form(max_length=16)] = "zh-CN",
    audience: Annotated[str, Form(max_length=16)] = "debtor",
    body: Annotated[str, Form(max_length=20_000)] = "",
    then: Annotated[str, Form(max_length=16)] = "save",
    situation: Annotated[str, Form(max_length=32)] = "",
    guidance: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Save the draft; with ``then=submit`` also send it to a compliance officer."""
    assert viewer.principal is not None
    principal = viewer.principal
    template = _get_template(session, viewer, template_id)
    form = {
        "name": name,
        "channel": channel,
        "locale": locale,
        "audience": audience,
        "body": body,
        "kind": template.kind or "",
        "situation": situation,
        "guidance": guidance,
    }
    try:
        if not name.strip() or not body.strip():
            raise ValidationFailed(viewer.text("compliance.templates.name_and_body_required"))
        templates_service.update_template(
            session,
            institution_id=template.institution_id,
            template_id=template.id,
            name=name.strip(),
            channel=channel,
            locale=locale,
            audience=audience,
            body=body,
            actor=principal.actor,
            actor_id=principal.user_id,
            situation=situation or None,
            guidance=guidance or None,
        )
        if then == "submit":
            templates_service.submit_template(
                session,
                institution_id=template.institution_id,
                template_id=template.id,
                actor=principal.actor,
                actor_id=principal.user_id,
            )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        template = _get_template(session, viewer, template_id)
        return _editor(
            viewer,
            session,
            template=template,
            form=form,
            form_error=labels.refusal(error, viewer.locale),
            status_code=422,
        )
    key = (
        "compliance.flash.template_submitted"
        if then == "submit"
        else "compliance.flash.template_saved"
    )
    message = Flash(key, params={"name": name.strip()})
    return redirect(f"/compliance/templates/{template_id}", request=viewer.request, message=message)


@router.post("/compliance/templates/{template_id}/decision", dependencies=[CsrfChecked])
def decide_template(
    viewer: ApproveTemplates,
    session: SessionDep,
    template_id: RowId,
    decision: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=16)] = "queue",
) -> Response:
    """Approve or reject a submitted template with a comment; never the author's own."""
    assert viewer.principal is not None
    template = _get_template(session, viewer, template_id)
    path = (
        f"/compliance/templates/{template_id}"
        if back == "detail"
        else "/compliance/templates?status=submitted"
    )
    try:
        if decision not in {"approve", "reject"}:
            raise ValidationFailed("choose approve or reject")
        templates_service.decide_template(
            session,
            institution_id=template.institution_id,
            template_id=template.id,
            approve=decision == "approve",
            actor=viewer.principal.actor,
            actor_id=viewer.principal.user_id,
            note=note.strip() or None,
        )
    except RecoupError as error:
        return _refused(viewer, path, error)
    key = f"compliance.flash.template_{'approved' if decision == 'approve' else 'rejected'}"
    return redirect(
        path, request=viewer.request, message=Flash(key, params={"name": template.name})
    )


# Decisions log


def _day(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


@router.get("/compliance/decisions", response_class=HTMLResponse)
def decisions_log(
    viewer: ReadCompliance,
    session: SessionDep,
    outcome: Annotated[str, Query(max_length=16)] = "",
    rule_id: Annotated[str, Query(max_length=16)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    debtor: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """List gate decisions newest first, filtered; times are in the institution's zone."""
    institution = _institution(session, viewer)
    filter_error = ""
    try:
        first_day, last_day = _day(since), _day(until)
    except ValueError:
        first_day = last_day = None
        filter_error = viewer.text("compliance.decisions.bad_date")
    moment_from: datetime | None = start_of_day(first_day, viewer.timezone) if first_day else None
    moment_until: datetime | None = (
        start_of_day(last_day + timedelta(days=1), viewer.timezone) if last_day else None
    )
    result = gate_repository.decisions_log_page(
        session,
        institution_id=institution.id,
        page=PageRequest(page, PAGE_SIZE),
        allowed={"allowed": True, "blocked": False}.get(outcome),
        rule_id=rule_id.strip().upper() or None,
        channel=channel if channel in CHANNELS else None,
        since=moment_from,
        until=moment_until,
        debtor_external_id=debtor.strip() or None,
    )
    chinese = _chinese(viewer)
    rows = [
        {
            "decision": decision,
            "debtor_external_id": external_id,
            "reasons": [
                {
                    "rule_id": reason.get("rule_id", ""),
                    "message": reason.get("message_zh" if chinese else "message_en", ""),
                }
                for reason in decision.reasons or []
            ],
        }
        for decision, external_id in result.items
    ]
    pack = load_pack(str(institution.jurisdiction))
    context: dict[str, Any] = {
        "page": result,
        "rows": rows,
        "page_url": page_url_for(viewer.request),
        "filters": {
            "outcome": outcome,
            "rule_id": rule_id,
            "channel": channel,
            "since": since,
            "until": until,
            "debtor": debtor,
        },
        "filter_error": filter_error,
        "channels": CHANNELS,
        "rule_ids": [rule.id for rule in pack.rules],
    }
    return render(viewer, "compliance/decisions.html", context, active_nav="compliance")


# Violations queue


def _violation_row(
    violation: ComplianceViolation, external_ids: Mapping[int, str]
) -> dict[str, Any]:
    before = min(EXCERPT_CONTEXT, violation.start)
    length = violation.end - violation.start
    excerpt = violation.excerpt
    return {
        "violation": violation,
        "debtor_external_id": external_ids.get(violation.debtor_id or 0),
        "before": excerpt[:before],
        "match": excerpt[before : before + length],
        "after": excerpt[before + length :],
    }


@router.get("/compliance/violations", response_class=HTMLResponse)
def violations_queue(
    viewer: ReadCompliance,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "open",
) -> HTMLResponse:
    """List violations found in agents' notes and transcripts, open ones first by default."""
    institution = _institution(session, viewer)
    wanted = ViolationStatus(status) if status in VIOLATION_STATUSES else None
    violations: Sequence[ComplianceViolation] = templates_repository.violations(
        session, institution_id=institution.id, status=wanted
    )
    external_ids = gate_repository.debtor_external_ids(
        session,
        institution_id=institution.id,
        debtor_ids=sorted({v.debtor_id for v in violations if v.debtor_id is not None}),
    )
    context: dict[str, Any] = {
        "rows": [_violation_row(violation, external_ids) for violation in violations],
        "status": wanted.value if wanted else "all",
        "statuses": VIOLATION_STATUSES,
        "category_names": _category_names(viewer),
    }
    return render(viewer, "compliance/violations.html", context, active_nav="compliance")


@router.post("/compliance/violations/{violation_id}/resolve", dependencies=[CsrfChecked])
def resolve_violation(
    viewer: ManagePolicy,
    session: SessionDep,
    violation_id: RowId,
    resolution: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Confirm or dismiss a violation with a note."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        if resolution not in {"confirm", "dismiss"}:
            raise ValidationFailed("choose confirm or dismiss")
        if not note.strip():
            raise ValidationFailed(viewer.text("compliance.violations.note_required"))
        templates_service.resolve_violation(
            session,
            institution_id=institution.id,
            violation_id=violation_id,
            confirmed=resolution == "confirm",
            actor=viewer.principal.actor,
            note=note.strip(),
        )
    except RecoupError as error:
        return _refused(viewer, "/compliance/violations", error)
    key = f"compliance.flash.violation_{'confirmed' if resolution == 'confirm' else 'dismissed'}"
    return redirect(
        "/compliance/violations",
        request=viewer.request,
        message=Flash(key, params={"id": str(violation_id)}),
    )


# Certifications


def _grant_form(viewer: Viewer, *, user_id: str = "") -> dict[str, str]:
    """Return the grant form as it first shows: a one-year certificate from today."""
    today = _today(viewer)
    return {
        "user_id": user_id,
        "course": viewer.text("compliance.certifications.default_course"),
        "issued_on": today.isoformat(),
        "expires_on": (today + timedelta(days=CERTIFICATE_YEAR_DAYS)).isoformat(),
    }


def _certifications(
    viewer: Viewer,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    form_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    today = _today(viewer)
    team_lead_id = viewer.principal.user_id if viewer.principal.role == "team_lead" else None
    roster = certifications_service.certification_roster(
        session, institution_id=institution.id, today=today, team_lead_id=team_lead_id
    )
    everyone = (
        certifications_service.certification_roster(
            session, institution_id=institution.id, today=today
        )
        if viewer.allows("policy:manage")
        else roster
    )
    counts = dict.fromkeys(("valid", "expiring", "expired", "missing"), 0)
    for row in roster:
        counts[row.standing] += 1
    context: dict[str, Any] = {
        "roster": sorted(
            roster,
            key=lambda row: (
                ("expired", "expiring", "missing", "valid").index(row.standing),
                row.user.username,
            ),
        ),
        "agents": [row.user for row in everyone],
        "counts": counts,
        "team_only": team_lead_id is not None,
        "warning_days": CERTIFICATE_EXPIRY_WARNING_DAYS,
        "form": form or _grant_form(viewer),
        "form_error": form_error,
    }
    return render(
        viewer,
        "compliance/certifications.html",
        context,
        active_nav="compliance",
        status_code=status_code,
    )


@router.get("/compliance/certifications", response_class=HTMLResponse)
def certifications(
    viewer: ReadCompliance,
    session: SessionDep,
    renew: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    """List agents' certificates (a team lead sees their own team) with a grant form."""
    if renew is not None:
        assert viewer.principal is not None
        get_scoped(session, User, renew, viewer.principal)
    form = _grant_form(viewer, user_id=str(renew) if renew else "")
    return _certifications(viewer, session, form=form)


def _is_about(error: RecoupError, field: str) -> bool:
    """Tell whether a refusal names one form field (its message then comes from the page)."""
    return any(item.get("field") == field for item in error.extra.get("errors", ()))


@router.post("/compliance/certifications", response_class=HTMLResponse, dependencies=[CsrfChecked])
def grant_certification(
    viewer: ManagePolicy,
    session: SessionDep,
    user_id: Annotated[str, Form(max_length=20)],
    course: Annotated[str, Form(max_length=128)] = "",
    issued_on: Annotated[str, Form(max_length=10)] = "",
    expires_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Grant or renew an agent's compliance certificate."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    form = {"user_id": user_id, "course": course, "issued_on": issued_on, "expires_on": expires_on}
    try:
        if not user_id.isdigit():
            raise ValidationFailed(viewer.text("compliance.certifications.choose_agent"))
        try:
            first, last = date.fromisoformat(issued_on), date.fromisoformat(expires_on)
        except ValueError:
            raise ValidationFailed(viewer.text("compliance.certifications.bad_date")) from None
        if not course.strip():
            raise ValidationFailed(viewer.text("compliance.certifications.course_required"))
        certification = certifications_service.grant_certification(
            session,
            institution_id=institution.id,
            user_id=int(user_id),
            course=course.strip(),
            issued_on=first,
            expires_on=last,
            actor=viewer.principal.actor,
            principal=viewer.principal,
        )
    except RecoupError as error:
        session.rollback()  # the page shown below must not read the refused change
        form_error = labels.refusal(error, viewer.locale)
        if isinstance(error, NotFound) or _is_about(error, "user_id"):
            form_error = viewer.text("compliance.certifications.choose_agent")
        return _certifications(
            viewer, session, form=form, form_error=form_error, status_code=error.status_code
        )
    agent = get_scoped(session, User, certification.user_id, viewer.principal)
    name = agent.display_name or agent.username
    message = Flash("compliance.flash.certification_granted", params={"name": name})
    return redirect("/compliance/certifications", request=viewer.request, message=message)


# Compliance facts of a debtor and their accounts (a panel on the debtor page)

RecordFacts = Annotated[Viewer, viewer_with("compliance:facts")]
FACTS_ACCOUNT_FIELD = "account-{id}-{field}"


def _facts_context(viewer: Viewer, session: Session, debtor_id: int) -> dict[str, Any]:
    assert viewer.principal is not None
    debtor = get_scoped(session, Debtor, debtor_id, viewer.principal)
    accounts = facts_repository.accounts_with_facts(
        session, principal=viewer.principal, debtor_id=debtor.id
    )
    stated = facts_service.inconvenient_for(session, debtor=debtor)
    institution = session.get(Institution, debtor.institution_id)
    assert institution is not None
    debtor_fields, account_fields = facts_service.fact_fields_for(institution)
    return {
        "inconvenient_times": stated.time_labels,
        "inconvenient_places": stated.place_names,
        "inconvenient_place_choices": [str(place) for place in InconvenientPlace],
        "facts_debtor": {
            "id": debtor.id,
            **{field: bool(getattr(debtor, field)) for field in facts_service.DEBTOR_FACT_FIELDS},
        },
        "facts_accounts": [
            {
                "id": account.id,
                "external_id": account.external_id,
                **{field: getattr(account, field) for field in facts_service.ACCOUNT_FACT_FIELDS},
            }
            for account in accounts
        ],
        "debtor_fields": debtor_fields,
        "account_fields": account_fields,
        "today": _today(viewer).isoformat(),
    }


@router.get("/debtors/{debtor_id}/compliance-facts", response_class=HTMLResponse)
def debtor_facts(viewer: RecordFacts, session: SessionDep, debtor_id: RowId) -> HTMLResponse:
    """Show the form recording a debtor's compliance facts (a panel, or a page without HTMX)."""
    context = _facts_context(viewer, session, debtor_id)
    if viewer.request.headers.get("hx-request") == "true":
        return render(viewer, "compliance/_facts_form.html", context, partial=True)
    return render(viewer, "compliance/facts.html", context, active_nav="debtors")


def _form_day(form: Mapping[str, Any], name: str, field: str) -> date | None:
    text = str(form.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{field}: {text!r} is not a date; use YYYY-MM-DD",
            errors=[{"field": field, "message": "use YYYY-MM-DD"}],
        ) from None


def _record_inconvenient(form: FormData, session: Session, debtor: Debtor, actor: str) -> int:
    """Record the stated inconvenient times and places of the form; return how many changed."""
    places = form.getlist("inconvenient_place")
    times, read_places = facts_service.read_inconvenient(
        times=str(form.get("inconvenient_times") or "").splitlines(),
        places=[str(place) for place in places],
    )
    before = facts_service.inconvenient_for(session, debtor=debtor)
    after = facts_service.record_inconvenient(
        session, debtor=debtor, actor=actor, times=times, places=read_places
    )
    return int(after.times != before.times) + int(after.places != before.places)


@router.post("/debtors/{debtor_id}/compliance-facts", dependencies=[CsrfChecked])
def record_debtor_facts(
    viewer: RecordFacts, session: SessionDep, debtor_id: RowId, form: PostedForm
) -> Response:
    """Record the facts of the form: debtor flags and each visible account's dates (audited)."""
    assert viewer.principal is not None
    principal = viewer.principal
    back = f"/debtors/{debtor_id}"
    try:
        debtor = get_scoped(session, Debtor, debtor_id, principal)
        institution = session.get(Institution, debtor.institution_id)
        assert institution is not None
        # Only the facts the form showed: a fact of another jurisdiction keeps its value.
        shown, _accounts = facts_service.fact_fields_for(institution)
        flags = {field: form.get(field) == "on" for field in shown}
        changed = len(
            facts_service.update_debtor_facts(
                session, debtor=debtor, changes=flags, actor=principal.actor
            )
        )
        if form.get("inconvenient_form"):
            changed += _record_inconvenient(form, session, debtor, principal.actor)
        for account in facts_repository.accounts_with_facts(
            session, principal=principal, debtor_id=debtor.id
        ):
            names = {
                field: FACTS_ACCOUNT_FIELD.format(id=account.id, field=field)
                for field in facts_service.ACCOUNT_FACT_FIELDS
            }
            if not any(name in form for name in names.values()):
                continue
            days = {
                field: _form_day(form, name, f"{account.external_id} {field}")
                for field, name in names.items()
                if name in form
            }
            try:
                changed += len(
                    facts_service.update_account_facts(
                        session, account=account, changes=days, actor=principal.actor
                    )
                )
            except ValidationFailed as error:
                raise ValidationFailed(f"{account.external_id} {error.message}") from error
    except RecoupError as error:
        return _refused(viewer, back, error)
    message = Flash("compliance.flash.facts_recorded", params={"count": str(changed)})
    return redirect(back, request=viewer.request, message=message)
