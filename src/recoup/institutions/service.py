"""Create and configure institutions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.institutions import repository
from recoup.institutions.rules import code_problem, preset_settings
from recoup.institutions.settings import (
    InstitutionSettings,
    merged,
    settings_of,
    validate_settings,
)
from recoup.kit.clock import is_valid_zone
from recoup.kit.errors import Conflict, ValidationFailed
from recoup.kit.money import MoneyError, minor_digits
from recoup.models.institution import Institution, Jurisdiction, Preset


def create_institution(
    session: Session,
    *,
    code: str,
    name: str,
    jurisdiction: str,
    timezone: str,
    currency: str,
    preset: str,
    actor: str = "system",
) -> Institution:
    """Add a tenant with its preset settings."""
    problems = []
    if (problem := code_problem(code)) is not None:
        problems.append(problem)
    if not name.strip():
        problems.append("the name cannot be empty")
    if jurisdiction not in set(Jurisdiction):
        problems.append(
            f"jurisdiction must be one of {', '.join(Jurisdiction)}, not {jurisdiction!r}"
        )
    if not is_valid_zone(timezone):
        problems.append(f"unknown time zone {timezone!r} (use an IANA name like Asia/Shanghai)")
    try:
        minor_digits(currency)
    except MoneyError as error:
        problems.append(str(error))
    if preset not in Preset.__members__:
        problems.append(f"preset must be one of {', '.join(Preset)}, not {preset!r}")
    if problems:
        raise ValidationFailed("; ".join(problems))
    if repository.get_by_code(session, code) is not None:
        raise Conflict(f"an institution with code {code!r} already exists")
    institution = Institution(
        code=code,
        name=name.strip(),
        jurisdiction=Jurisdiction(jurisdiction),
        timezone=timezone,
        currency=currency,
        preset=Preset(preset),
        settings=preset_settings(preset),
    )
    session.add(institution)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="institution.create",
        object_type="institution",
        object_id=institution.id,
        institution_id=institution.id,
        details={"code": code, "preset": preset, "jurisdiction": jurisdiction},
    )
    return institution


def update_settings(
    session: Session, *, institution: Institution, changes: dict[str, Any], actor: str
) -> InstitutionSettings:
    """Apply ``changes`` (by section) to the institution's settings after validating the whole."""
    before = settings_of(institution).model_dump(mode="json")
    updated = validate_settings(merged(before, changes))
    after = updated.model_dump(mode="json")
    if after == before:
        return updated
    institution.settings = after
    changed = {
        f"{section}.{name}": {"old": before[section].get(name), "new": value}
        for section, values in after.items()
        for name, value in values.items()
        if before[section].get(name) != value
    }
    audit.record(
        session,
        actor=actor,
        action="institution.settings",
        object_type="institution",
        object_id=institution.id,
        institution_id=institution.id,
        details={"changed": changed},
    )
    return updated
