"""Compliance JSON routes: the contact gate, decisions, policy, templates, violations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from sqlalchemy.orm import Session

from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import repository as gate_repository
from recoup.compliance.gate import service as gate_service
from recoup.compliance.policy import service as policy_service
from recoup.compliance.rulepack import RulePackError, load_pack
from recoup.compliance.schemas import (
    AccountFactsRead,
    AccountFactsUpdate,
    CertificationCreate,
    CertificationRead,
    ContactCheck,
    ContactCheckResult,
    DebtorFactsRead,
    DebtorFactsUpdate,
    DecisionRead,
    FindingRead,
    InconvenientRead,
    InconvenientUpdate,
    NoteScan,
    OutcomeCreate,
    PolicyProposal,
    PolicyRead,
    ReasonRead,
    TemplateCreate,
    TemplateDecision,
    TemplateRead,
    TemplateReview,
    TemplateReviewResult,
    ViolationRead,
    ViolationResolution,
)
from recoup.compliance.templates import repository as templates_repository
from recoup.compliance.templates import service as templates_service
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.kit.clock import utcnow
from recoup.kit.errors import NotFound, PermissionDenied
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.account import Account
from recoup.models.compliance import (
    Certification,
    CompliancePolicy,
    ComplianceViolation,
    ContactDecision,
    MessageTemplate,
    ViolationStatus,
)
from recoup.models.debtor import Debtor
from recoup.web.localization import from_accept_language

router = APIRouter(prefix="/api/v1", tags=["compliance"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# Policy versions count up from 1 in a 32-bit column.
PolicyVersion = Annotated[int, Path(ge=1, le=2**31 - 1)]
AcceptLanguage = Annotated[str | None, Header(alias="accept-language")]


def _institution_id(principal: Principal) -> int:
    if principal.institution_id is None:
        raise PermissionDenied("compliance data belongs to an institution; sign in as its user")
    return principal.institution_id


def _chinese(accept_language: str | None) -> bool:
    return from_accept_language(accept_language) == "zh-CN"


def _decision(row: ContactDecision) -> DecisionRead:
    return DecisionRead.model_validate(row, from_attributes=True)


def _template(row: MessageTemplate) -> TemplateRead:
    return TemplateRead.model_validate(row, from_attributes=True)


def _policy(row: CompliancePolicy) -> PolicyRead:
    return PolicyRead.model_validate(row, from_attributes=True)


def _violation(row: ComplianceViolation) -> ViolationRead:
    return ViolationRead.model_validate(row, from_attributes=True)


def _decide_template(
    session: Session,
    principal: Principal,
    template_id: int,
    body: TemplateDecision,
    *,
    approve: bool,
) -> TemplateRead:
    row = templates_service.decide_template(
        session,
        institution_id=_institution_id(principal),
        template_id=template_id,
        approve=approve,
        actor=principal.actor,
        actor_id=principal.user_id,
        note=body.note,
    )
    return _template(row)


def _certification(row: Certification) -> CertificationRead:
    return CertificationRead.model_validate(row, from_attributes=True)


@router.post(
    "/compliance/check",
    response_model=ContactCheckResult,
    dependencies=[Depends(authorize("compliance:check"))],
)
def check_contact(
    body: ContactCheck,
    principal: CurrentPrincipal,
    session: SessionDep,
    accept_language: AcceptLanguage = None,
) -> ContactCheckResult:
    """Ask the gate whether a planned contact may happen; every answer is stored.

    An allowed answer reserves the contact's slots unless the body says ``"reserve": false``.
    """
    checked = gate_service.check_contact(
        session,
        institution_id=_institution_id(principal),
        debtor_id=body.debtor_id,
        contact_point_id=body.contact_point_id,
        account_id=body.account_id,
        channel=body.channel,
        party=body.party,
        at=body.at,
        automated=body.automated,
        at_workplace=body.at_workplace,
        actor=principal.actor,
        agent_user_id=principal.user_id if principal.is_agent else None,
        reserve=body.reserve,
        principal=principal,
    )
    chinese = _chinese(accept_language)
    decision = checked.decision
    return ContactCheckResult(
        allowed=decision.allowed,
        reasons=[
            ReasonRead(
                rule_id=reason.rule_id,
                code=reason.code,
                message=reason.message_zh if chinese else reason.message_en,
                message_en=reason.message_en,
                message_zh=reason.message_zh,
            )
            for reason in decision.reasons
        ],
        next_allowed_at=decision.next_allowed_at,
        decision_id=checked.record.id,
        reserved=decision.allowed and body.reserve,
        pack=f"{decision.pack_code} {decision.pack_version}",
        policy=f"{decision.policy_name} v{decision.policy_version}",
    )


@router.post(
    "/compliance/decisions/{decision_id}/outcome",
    response_model=DecisionRead,
    dependencies=[Depends(authorize("compliance:check"))],
)
def record_outcome(
    decision_id: RowId, body: OutcomeCreate, principal: CurrentPrincipal, session: SessionDep
) -> DecisionRead:
    """Record what came of an allowed contact in the debtor's contact log.

    Until this is recorded the contact counts against every cap. An outcome that is not an
    effective call (no answer, busy, …) frees its effective-call slot; ``"outcome":
    "not_made"`` frees every slot it held. The contact log's row (``GET
    /api/v1/debtors/{id}/contacts``) carries the outcome code and what it means.
    """
    institution_id = _institution_id(principal)
    gate_service.record_outcome(
        session,
        institution_id=institution_id,
        decision_id=decision_id,
        outcome=body.outcome,
        effective=body.effective,
        happened_at=body.happened_at,
        ended_at=body.ended_at,
        duration_seconds=body.duration_seconds,
        provider_message_id=body.provider_message_id,
        actor=principal.username,
        principal=principal,
        script_id=body.script_id,
    )
    row = gate_repository.get_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    assert row is not None
    return _decision(row)


@router.get(
    "/compliance/decisions",
    response_model=Paginated[DecisionRead],
    dependencies=[Depends(authorize("compliance:read"))],
)
def list_decisions(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    allowed: bool | None = None,
    rule_id: Annotated[str | None, Query(max_length=16)] = None,
    debtor_id: Annotated[int | None, Query(ge=1)] = None,
) -> Paginated[DecisionRead]:
    """List gate decisions, newest first, filtered by outcome, rule or debtor."""
    result = gate_service.decisions_page(
        session,
        principal=principal,
        institution_id=_institution_id(principal),
        page=PageRequest(page, size),
        allowed=allowed,
        rule_id=rule_id,
        debtor_id=debtor_id,
    )
    return Paginated[DecisionRead](
        items=[_decision(row) for row in result.items],
        total=result.total,
        page=result.page,
        size=result.size,
        pages=result.pages,
    )


@router.get(
    "/compliance/packs/{code}",
    dependencies=[Depends(authorize("compliance:read"))],
)
def show_pack(code: Annotated[str, Path(max_length=8)]) -> dict[str, Any]:
    """Show a rule pack: every rule with its parameters, citation and messages."""
    try:
        pack = load_pack(code)
    except RulePackError as error:
        raise NotFound(str(error)) from error
    return {
        "code": pack.code,
        "version": pack.version,
        "title": {"zh": pack.title.zh, "en": pack.title.en},
        "rules": [
            {
                "id": rule.id,
                "kind": rule.kind,
                "source": rule.source,
                "title": {"zh": rule.title.zh, "en": rule.title.en},
                "citation": rule.citation,
                "parameters": dict(rule.parameters),
            }
            for rule in pack.rules
        ],
    }


@router.post(
    "/compliance/policies",
    response_model=PolicyRead,
    status_code=201,
    dependencies=[Depends(authorize("policy:manage"))],
)
def propose_policy(
    body: PolicyProposal, principal: CurrentPrincipal, session: SessionDep
) -> PolicyRead:
    """Propose a policy version; one looser than the rule pack is refused with the rule."""
    row = policy_service.propose_policy(
        session,
        institution_id=_institution_id(principal),
        document=body.document,
        actor=principal.actor,
    )
    return _policy(row)


@router.post(
    "/compliance/policies/{version}/approve",
    response_model=PolicyRead,
    dependencies=[Depends(authorize("policy:manage"))],
)
def approve_policy(
    version: PolicyVersion, principal: CurrentPrincipal, session: SessionDep
) -> PolicyRead:
    """Put a proposed policy version in force (not by its proposer)."""
    row = policy_service.approve_policy(
        session, institution_id=_institution_id(principal), version=version, actor=principal.actor
    )
    return _policy(row)


@router.post(
    "/templates/review",
    response_model=TemplateReviewResult,
    dependencies=[Depends(authorize("templates:review"))],
)
def review_template(
    body: TemplateReview,
    principal: CurrentPrincipal,
    session: SessionDep,
    accept_language: AcceptLanguage = None,
) -> TemplateReviewResult:
    """Review a text under the institution's rule pack: banned language, missing elements."""
    result = templates_service.review_for_institution(
        session,
        institution_id=_institution_id(principal),
        text=body.text,
        locale=body.locale,
        audience=body.audience.value,
        channel=body.channel.value,
        kind=body.kind,
    )
    chinese = _chinese(accept_language)
    return TemplateReviewResult(
        passed=result.passed,
        findings=[
            FindingRead(
                category=finding.category,
                rule_id=finding.rule_id,
                start=finding.start,
                end=finding.end,
                text=finding.text,
                message=finding.message_zh if chinese else finding.message_en,
            )
            for finding in result.findings
        ],
    )


@router.get(
    "/templates",
    response_model=list[TemplateRead],
    dependencies=[Depends(authorize("templates:read"))],
)
def list_templates(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> list[TemplateRead]:
    """List the institution's templates, optionally in one workflow status."""
    rows = templates_repository.templates(
        session, institution_id=_institution_id(principal), status=status
    )
    return [_template(row) for row in rows]


@router.post(
    "/templates",
    response_model=TemplateRead,
    status_code=201,
    dependencies=[Depends(authorize("templates:write"))],
)
def create_template(
    body: TemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """Draft a template or call script."""
    row = templates_service.create_template(
        session,
        institution_id=_institution_id(principal),
        name=body.name,
        channel=body.channel.value,
        locale=body.locale,
        audience=body.audience.value,
        kind=body.kind,
        situation=body.situation.value if body.situation else None,
        guidance=body.guidance,
        body=body.body,
        author=principal.actor,
        author_id=principal.user_id,
    )
    return _template(row)


@router.post(
    "/templates/{template_id}/submit",
    response_model=TemplateRead,
    dependencies=[Depends(authorize("templates:write"))],
)
def submit_template(
    template_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """Run the review and send the template for approval."""
    row = templates_service.submit_template(
        session,
        institution_id=_institution_id(principal),
        template_id=template_id,
        actor=principal.actor,
        actor_id=principal.user_id,
    )
    return _template(row)


@router.post(
    "/templates/{template_id}/approve",
    response_model=TemplateRead,
    dependencies=[Depends(authorize("templates:approve"))],
)
def approve_template(
    template_id: RowId, body: TemplateDecision, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """Approve a submitted template (never one's own, never one with findings)."""
    return _decide_template(session, principal, template_id, body, approve=True)


@router.post(
    "/templates/{template_id}/reject",
    response_model=TemplateRead,
    dependencies=[Depends(authorize("templates:approve"))],
)
def reject_template(
    template_id: RowId, body: TemplateDecision, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """Reject a submitted or approved template with a note for its author."""
    return _decide_template(session, principal, template_id, body, approve=False)


@router.post(
    "/compliance/violations/scan",
    response_model=list[ViolationRead],
    dependencies=[Depends(authorize("cases:work"))],
)
def scan_note(
    body: NoteScan, principal: CurrentPrincipal, session: SessionDep
) -> list[ViolationRead]:
    """Scan an agent's note or transcript; every hit is queued for the compliance officer."""
    rows = templates_service.scan_for_violations(
        session,
        institution_id=_institution_id(principal),
        text=body.text,
        locale=body.locale,
        source=body.source,
        source_id=body.source_id,
        debtor_id=body.debtor_id,
        actor=principal.actor,
        principal=principal,
    )
    return [_violation(row) for row in rows]


@router.get(
    "/compliance/violations",
    response_model=list[ViolationRead],
    dependencies=[Depends(authorize("compliance:read"))],
)
def list_violations(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: ViolationStatus | None = None,
) -> list[ViolationRead]:
    """List queued violations, newest first."""
    rows = templates_repository.violations(
        session, institution_id=_institution_id(principal), status=status
    )
    return [_violation(row) for row in rows]


@router.post(
    "/compliance/violations/{violation_id}/resolve",
    response_model=ViolationRead,
    dependencies=[Depends(authorize("policy:manage"))],
)
def resolve_violation(
    violation_id: RowId, body: ViolationResolution, principal: CurrentPrincipal, session: SessionDep
) -> ViolationRead:
    """Confirm or dismiss a violation."""
    row = templates_service.resolve_violation(
        session,
        institution_id=_institution_id(principal),
        violation_id=violation_id,
        confirmed=body.confirmed,
        actor=principal.actor,
        note=body.note,
    )
    return _violation(row)


@router.post(
    "/compliance/certifications",
    response_model=CertificationRead,
    status_code=201,
    dependencies=[Depends(authorize("policy:manage"))],
)
def grant_certification(
    body: CertificationCreate, principal: CurrentPrincipal, session: SessionDep
) -> CertificationRead:
    """Record a compliance training certificate for a user."""
    row = certifications_service.grant_certification(
        session,
        institution_id=_institution_id(principal),
        user_id=body.user_id,
        course=body.course,
        issued_on=body.issued_on,
        expires_on=body.expires_on,
        actor=principal.actor,
        principal=principal,
    )
    return _certification(row)


@router.get(
    "/compliance/certifications/expiring",
    response_model=list[CertificationRead],
    dependencies=[Depends(authorize("compliance:read"))],
)
def expiring_certifications(
    principal: CurrentPrincipal,
    session: SessionDep,
    within_days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> list[CertificationRead]:
    """List certificates that expire soon."""
    rows = certifications_service.expiring_certifications(
        session,
        institution_id=_institution_id(principal),
        on=utcnow().date(),
        within_days=within_days,
    )
    return [_certification(row) for row in rows]


def debtor_facts_read(debtor: Debtor, changed: list[str]) -> DebtorFactsRead:
    """Return the stored debtor-level facts with the names of those just changed."""
    return DebtorFactsRead(
        debtor_id=debtor.id,
        **{field: bool(getattr(debtor, field)) for field in facts_service.DEBTOR_FACT_FIELDS},
        changed=changed,
    )


def account_facts_read(account: Account, changed: list[str]) -> AccountFactsRead:
    """Return the stored per-debt facts with the names of those just changed."""
    return AccountFactsRead(
        account_id=account.id,
        **{field: getattr(account, field) for field in facts_service.ACCOUNT_FACT_FIELDS},
        changed=changed,
    )


@router.patch(
    "/debtors/{debtor_id}/compliance-facts",
    response_model=DebtorFactsRead,
    dependencies=[Depends(authorize("compliance:facts"))],
)
def update_debtor_facts(
    debtor_id: RowId, body: DebtorFactsUpdate, principal: CurrentPrincipal, session: SessionDep
) -> DebtorFactsRead:
    """Record debtor-level facts (cease contact, attorney, dispute …); only fields sent change."""
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    changed = facts_service.update_debtor_facts(
        session, debtor=debtor, changes=changes, actor=principal.actor
    )
    return debtor_facts_read(debtor, sorted(changed))


@router.patch(
    "/accounts/{account_id}/compliance-facts",
    response_model=AccountFactsRead,
    dependencies=[Depends(authorize("compliance:facts"))],
)
def update_account_facts(
    account_id: RowId, body: AccountFactsUpdate, principal: CurrentPrincipal, session: SessionDep
) -> AccountFactsRead:
    """Record an account's validation and limitation dates; only fields sent change."""
    account = get_scoped(session, Account, account_id, principal)
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    changed = facts_service.update_account_facts(
        session, account=account, changes=changes, actor=principal.actor
    )
    return account_facts_read(account, sorted(changed))


def inconvenient_read(
    debtor: Debtor, stated: facts_service.Inconvenient, changed: list[str]
) -> InconvenientRead:
    """Return the debtor's stated inconvenient times and places."""
    return InconvenientRead(
        debtor_id=debtor.id, times=stated.time_labels, places=stated.place_names, changed=changed
    )


@router.get(
    "/debtors/{debtor_id}/inconvenient",
    response_model=InconvenientRead,
    dependencies=[Depends(authorize("compliance:facts"))],
)
def read_inconvenient(
    debtor_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> InconvenientRead:
    """Show the times and places the debtor said are inconvenient (US-INCONV)."""
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    return inconvenient_read(debtor, facts_service.inconvenient_for(session, debtor=debtor), [])


@router.patch(
    "/debtors/{debtor_id}/inconvenient",
    response_model=InconvenientRead,
    dependencies=[Depends(authorize("compliance:facts"))],
)
def record_inconvenient(
    debtor_id: RowId, body: InconvenientUpdate, principal: CurrentPrincipal, session: SessionDep
) -> InconvenientRead:
    """Record inconvenient times and places the debtor stated; each list sent replaces the old."""
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    times, places = facts_service.read_inconvenient(times=body.times, places=body.places)
    before = facts_service.inconvenient_for(session, debtor=debtor)
    after = facts_service.record_inconvenient(
        session, debtor=debtor, actor=principal.actor, times=times, places=places, note=body.note
    )
    changed = [
        name
        for name, moved in (
            ("places", after.places != before.places),
            ("times", after.times != before.times),
        )
        if moved
    ]
    return inconvenient_read(debtor, after, changed)
