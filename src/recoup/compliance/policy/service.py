"""Institution policies: the one in force, proposals checked against the pack, approval."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.policy import repository
from recoup.compliance.policy.rules import (
    Policy,
    PolicyViolation,
    policy_document,
    policy_from_document,
    preset_policy,
    validate_policy,
)
from recoup.compliance.rulepack import load_pack
from recoup.institutions import repository as institutions_repository
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recoup.models.compliance import (
    CompliancePolicy,
)
from recoup.models.institution import Institution


def institution_policy(session: Session, *, institution: Institution) -> Policy:
    """Return the policy in force: the newest approved version, else the preset."""
    row = repository.latest_approved_policy(session, institution_id=institution.id)
    if row is None:
        return preset_policy(str(institution.preset), pack=load_pack(str(institution.jurisdiction)))
    document = {**row.document, "version": str(row.version), "name": row.name}
    return policy_from_document(document)


def propose_policy(
    session: Session, *, institution_id: int, document: Mapping[str, Any], actor: str
) -> CompliancePolicy:
    """Store a new policy version after checking it is no looser than the rule pack."""
    institution = institutions_repository.require_by_id(session, institution_id)
    try:
        policy = policy_from_document(document)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationFailed(f"the policy document is not valid: {error}") from error
    violations = validate_policy(policy, load_pack(str(institution.jurisdiction)))
    if violations:
        raise ValidationFailed(
            "the policy would loosen the rule pack: "
            + "; ".join(f"{v.rule_id} ({v.field}): {v.message.en}" for v in violations),
            violations=[
                {"rule_id": v.rule_id, "field": v.field, "message": v.message.en}
                for v in violations
            ],
        )
    version = repository.newest_policy_version(session, institution_id=institution_id) + 1
    row = CompliancePolicy(
        institution_id=institution_id,
        version=version,
        name=policy.name,
        document=policy_document(policy),
        proposed_by=actor,
    )
    session.add(row)
    session.flush()
    _audit_policy(session, row=row, action="compliance.policy_proposed", actor=actor)
    return row


def _audit_policy(session: Session, *, row: CompliancePolicy, action: str, actor: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="compliance_policy",
        object_id=row.id,
        institution_id=row.institution_id,
        details={"version": row.version},
    )


def approve_policy(
    session: Session, *, institution_id: int, version: int, actor: str
) -> CompliancePolicy:
    """Put a proposed policy version in force; the proposer cannot approve it."""
    row = repository.policy_version(session, institution_id=institution_id, version=version)
    if row is None:
        raise NotFound(f"no policy version {version}")
    if row.approved_at is not None:
        raise Conflict(
            f"policy version {version} is already approved",
            message_key="compliance.error.policy_already_approved",
            message_params={"version": version},
        )
    if row.proposed_by == actor:
        raise PermissionDenied(
            "the proposer cannot approve their own policy; ask another officer",
            message_key="compliance.error.own_policy",
        )
    row.approved_by = actor
    row.approved_at = utcnow()
    session.flush()
    _audit_policy(session, row=row, action="compliance.policy_approved", actor=actor)
    return row


def policy_problems(
    session: Session, *, institution_id: int, document: Mapping[str, Any]
) -> list[PolicyViolation]:
    """List how a policy document would loosen the institution's rule pack (zh and en)."""
    institution = institutions_repository.require_by_id(session, institution_id)
    try:
        policy = policy_from_document(document)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationFailed(f"the policy document is not valid: {error}") from error
    return validate_policy(policy, load_pack(str(institution.jurisdiction)))
