"""API shapes shared by the dialer and field visit routes (the routes are in the sub-packages)."""

from __future__ import annotations

from collections.abc import Sequence

from recoup.kit.masking import mask_text
from recoup.models.outreach import ContactReport, WorkList
from recoup.outreach.schemas import (
    ContactReportRead,
    ReasonRead,
    WorkListEntryRead,
    WorkListRead,
)
from recoup.outreach.service import EntryView


def entry_read(view: EntryView) -> WorkListEntryRead:
    """Return the API shape of a list entry, the contact point masked."""
    entry = view.entry
    point = view.contact_point
    return WorkListEntryRead(
        id=entry.id,
        position=entry.position,
        case_id=entry.case_id,
        debtor_id=entry.debtor_id,
        debtor_external_id=view.debtor.external_id,
        account_id=entry.account_id,
        contact_point_id=entry.contact_point_id,
        contact_point=mask_text(point.value, point.kind) if point else None,
        allowed=entry.allowed,
        decision_id=entry.decision_id,
        reasons=[ReasonRead.model_validate(reason) for reason in entry.reasons],
        next_allowed_at=entry.next_allowed_at,
        city=entry.city,
        district=entry.district,
        balance_minor=entry.balance,
        currency=entry.currency,
        reported=[report.outcome for report in view.reports],
    )


def work_list_read(work_list: WorkList, views: Sequence[EntryView]) -> WorkListRead:
    """Return the API shape of a work list and its entries."""
    return WorkListRead(
        id=work_list.id,
        kind=work_list.kind,
        agent_id=work_list.agent_id,
        queue_id=work_list.queue_id,
        work_day=work_list.work_day,
        built_at=work_list.built_at,
        built_by=work_list.built_by,
        allowed=work_list.allowed,
        blocked=work_list.blocked,
        route_metres=work_list.route_metres,
        entries=[entry_read(view) for view in views],
    )


def report_read(report: ContactReport, *, replayed: bool) -> ContactReportRead:
    """Return the API shape of a contact report."""
    return ContactReportRead(
        id=report.id,
        kind=report.kind,
        external_id=report.external_id,
        entry_id=report.entry_id,
        debtor_id=report.debtor_id,
        happened_at=report.happened_at,
        outcome=report.outcome,
        decision_id=report.decision_id,
        attempt_id=report.attempt_id,
        violation=report.violation,
        rule_ids=list(report.rule_ids),
        record_ref=report.record_ref,
        replayed=replayed,
    )
