"""``recoup compliance rules|check|outcome|decisions|inconvenient|review``: packs, gate, review.

Exit codes: 0 when a contact is allowed or a text is clean, 3 when the gate blocks the
contact or the review finds something, 1 for an error a person must fix (unknown
institution, debtor, bad option).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import repository as gate_repository
from recoup.compliance.gate import service as gate_service
from recoup.compliance.rulepack import PACK_CODES, RulePackError, load_pack
from recoup.compliance.templates import service as templates_service
from recoup.compliance.templates.review import ReviewResult
from recoup.contact.channels import OUTBOUND_CHANNELS, Channel, outbound_channel
from recoup.contact.rules import Party
from recoup.db import unit_of_work
from recoup.institutions.repository import require_by_code
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.pagination import MAX_PAGE_SIZE, PageRequest

app = typer.Typer(
    help="Compliance rule packs, the contact gate, its decisions and script review.",
    no_args_is_help=True,
)

CLI_ACTOR = "cli"
BLOCKED_EXIT = 3
INSTITUTION = typer.Option(..., "--institution", help="Institution code, e.g. DEMO-CF")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table")


def _choice(enum: type[Channel] | type[Party], value: str, option: str) -> Any:
    try:
        return outbound_channel(value) if enum is Channel else enum(value)
    except ValueError:
        members = [m for m in enum if enum is not Channel or m in OUTBOUND_CHANNELS]
        known = ", ".join(member.value for member in members)
        raise ValidationFailed(f"{option} must be one of {known}; got {value!r}") from None


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"--at must be an ISO date-time like 2025-03-03T10:00:00+08:00; got {value!r}"
        ) from None
    if moment.utcoffset() is None:
        raise ValidationFailed("--at must carry a UTC offset, e.g. 2025-03-03T10:00:00+08:00")
    return moment


@app.command("rules")
def rules(
    pack: str | None = typer.Option(None, "--pack", help=f"{', '.join(PACK_CODES)} (default: all)"),
    as_json: bool = AS_JSON,
) -> None:
    """List the rules of the packs: ids, parameters and citations."""
    with fail_on_domain_error():
        codes = [pack.upper()] if pack else list(PACK_CODES)
        try:
            packs = [load_pack(code) for code in codes]
        except RulePackError as error:
            raise ValidationFailed(f"--pack: {error}") from error
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "pack": loaded.code,
                        "version": loaded.version,
                        "rules": [
                            {
                                "id": rule.id,
                                "kind": rule.kind,
                                "source": rule.source,
                                "title": {"zh": rule.title.zh, "en": rule.title.en},
                                "citation": rule.citation,
                                "parameters": dict(rule.parameters),
                            }
                            for rule in loaded.rules
                        ],
                    }
                    for loaded in packs
                ],
                ensure_ascii=False,
            )
        )
        return
    for loaded in packs:
        table = Table(
            "id", "rule", "parameters", "citation", title=f"{loaded.code} {loaded.version}"
        )
        for rule in loaded.rules:
            parameters = "; ".join(
                f"{key}={_shown(value)}" for key, value in rule.parameters.items()
            )
            table.add_row(rule.id, rule.title.en, parameters or "—", rule.citation)
        console.print(table)


@app.command("check")
def check(
    institution: str = INSTITUTION,
    debtor: str = typer.Option(..., "--debtor", help="Debtor external id (D0001) or id"),
    contact_point: int | None = typer.Option(
        None, "--contact-point", min=1, help="Contact point id (required for a third party)"
    ),
    account: int | None = typer.Option(None, "--account", min=1, help="Account id of the debt"),
    channel: str = typer.Option(..., "--channel", help="call, sms, email, letter, visit …"),
    party: str = typer.Option("debtor", "--party", help="debtor or third_party"),
    at: str = typer.Option(..., "--at", help="Planned time, ISO 8601 with offset"),
    at_workplace: bool = typer.Option(
        False, "--at-workplace", help="The contact reaches the debtor at work (US-WORK)"
    ),
    automated: bool = typer.Option(False, "--automated", help="Autodialled or prerecorded"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only ask: an allowed answer reserves no contact slot"
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Ask the gate whether a planned contact may happen; exit 3 when it is blocked."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = require_by_code(session, institution)
        target = facts_service.find_debtor(session, institution_id=owner.id, reference=debtor)
        checked = gate_service.check_contact(
            session,
            institution_id=owner.id,
            debtor_id=target.id,
            contact_point_id=contact_point,
            account_id=account,
            channel=_choice(Channel, channel, "--channel"),
            party=_choice(Party, party, "--party"),
            at=_moment(at),
            automated=automated,
            at_workplace=at_workplace,
            actor=CLI_ACTOR,
            reserve=not dry_run,
        )
        decision = checked.decision
        decision_id = checked.record.id
    result = {
        "allowed": decision.allowed,
        "reasons": [
            {
                "rule_id": reason.rule_id,
                "code": reason.code,
                "message": reason.message_en,
                "message_zh": reason.message_zh,
            }
            for reason in decision.reasons
        ],
        "next_allowed_at": (
            decision.next_allowed_at.isoformat() if decision.next_allowed_at else None
        ),
        "decision_id": decision_id,
        "reserved": decision.allowed and not dry_run,
    }
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    elif decision.allowed:
        held = "dry run, nothing reserved" if dry_run else "slot reserved"
        console.print(f"[green]allowed[/] (decision {decision_id}, {held})")
    else:
        console.print(f"[red]blocked[/] (decision {decision_id})")
        for reason in decision.reasons:
            console.print(f"  {reason.rule_id}: {reason.message_en}")
        next_time = result["next_allowed_at"] or "not while these facts hold"
        console.print(f"  next allowed: {next_time}")
    if not decision.allowed:
        raise typer.Exit(code=BLOCKED_EXIT)


@app.command("outcome")
def outcome(
    decision: int = typer.Argument(..., min=1, help="The decision id the gate answered with"),
    result: str = typer.Argument(
        ..., help="An outcome code (right_party, no_answer, promise_made, …) or not_made"
    ),
    institution: str = INSTITUTION,
    at: str = typer.Option(..., "--at", help="When it happened, ISO 8601 with offset"),
    duration: int | None = typer.Option(
        None, "--duration", min=0, max=86_400, help="Length of the call in seconds"
    ),
) -> None:
    """Record what came of an allowed contact in the contact log; frees slots it no longer holds."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = require_by_code(session, institution)
        attempt = gate_service.record_outcome(
            session,
            institution_id=owner.id,
            decision_id=decision,
            outcome=result,
            happened_at=_moment(at),
            duration_seconds=duration,
            actor=CLI_ACTOR,
        )
        shown = f"{attempt.status}, {attempt.outcome}" if attempt.outcome else attempt.status
    console.print(f"decision {decision}: {shown}")


@app.command("decisions")
def decisions(
    institution: str = INSTITUTION,
    debtor: str | None = typer.Option(
        None, "--debtor", help="Only this debtor: external id (D0001) or id"
    ),
    blocked: bool = typer.Option(False, "--blocked", help="Only blocked attempts"),
    limit: int = typer.Option(20, "--limit", min=1, max=MAX_PAGE_SIZE, help="Newest N"),
    as_json: bool = AS_JSON,
) -> None:
    """List the gate's stored decisions, newest first."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = require_by_code(session, institution)
        debtor_id = (
            None
            if debtor is None
            else facts_service.find_debtor(session, institution_id=owner.id, reference=debtor).id
        )
        page = gate_repository.decisions_page(
            session,
            institution_id=owner.id,
            page=PageRequest(1, limit),
            allowed=False if blocked else None,
            debtor_id=debtor_id,
        )
        rows: list[dict[str, Any]] = [
            {
                "id": row.id,
                "debtor_id": row.debtor_id,
                "account_id": row.account_id,
                "contact_point_id": row.contact_point_id,
                "channel": row.channel,
                "party": row.party,
                "planned_at": row.planned_at.isoformat(),
                "allowed": row.allowed,
                "dry_run": row.inputs.get("reserve") is False,
                "rule_ids": list(row.rule_ids),
                "next_allowed_at": row.next_allowed_at.isoformat() if row.next_allowed_at else None,
                "actor": row.actor,
            }
            for row in page.items
        ]
    if as_json:
        typer.echo(json.dumps({"total": page.total, "items": rows}, ensure_ascii=False))
        return
    table = Table("id", "debtor", "channel", "party", "planned at", "allowed", "rules")
    for item in rows:
        table.add_row(
            str(item["id"]),
            str(item["debtor_id"]),
            str(item["channel"]),
            str(item["party"]),
            str(item["planned_at"]),
            "yes" if item["allowed"] else "no",
            ", ".join(item["rule_ids"]) or "—",
        )
    console.print(table)
    console.print(f"{len(rows)} of {page.total} decision(s)")


@app.command("inconvenient")
def inconvenient(
    institution: str = INSTITUTION,
    debtor: str = typer.Option(..., "--debtor", help="Debtor external id (D0001) or id"),
    times: list[str] = typer.Option(
        [], "--time", help="An inconvenient local window, e.g. 22:00-08:00 or '09:00-17:00 mon-fri'"
    ),
    places: list[str] = typer.Option([], "--place", help="An inconvenient place: workplace, home"),
    clear_times: bool = typer.Option(False, "--clear-times", help="Remove every stated time"),
    clear_places: bool = typer.Option(False, "--clear-places", help="Remove every stated place"),
    as_json: bool = AS_JSON,
) -> None:
    """Show or record the times and places a debtor said are inconvenient (US-INCONV).

    Given times replace the stored times and given places the stored places; without any,
    the command only shows them.
    """
    with fail_on_domain_error(), unit_of_work() as session:
        owner = require_by_code(session, institution)
        target = facts_service.find_debtor(session, institution_id=owner.id, reference=debtor)
        read_times, read_places = facts_service.read_inconvenient(
            times=[] if clear_times else (times or None),
            places=[] if clear_places else (places or None),
        )
        if read_times is None and read_places is None:
            stated = facts_service.inconvenient_for(session, debtor=target)
        else:
            stated = facts_service.record_inconvenient(
                session, debtor=target, actor=CLI_ACTOR, times=read_times, places=read_places
            )
        shown = {
            "debtor_id": target.id,
            "external_id": target.external_id,
            "times": stated.time_labels,
            "places": stated.place_names,
        }
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    console.print(f"debtor {shown['external_id']} (id {shown['debtor_id']})")
    console.print(f"  inconvenient times: {', '.join(stated.time_labels) or '—'}")
    console.print(f"  inconvenient places: {', '.join(stated.place_names) or '—'}")


def _review_json(result: ReviewResult) -> dict[str, Any]:
    return {
        "passed": result.passed,
        "findings": [
            {
                "category": finding.category,
                "rule_id": finding.rule_id,
                "start": finding.start,
                "end": finding.end,
                "text": finding.text,
                "message": finding.message_en,
                "message_zh": finding.message_zh,
            }
            for finding in result.findings
        ],
    }


@app.command("review")
def review(
    file: Path = typer.Argument(..., help="UTF-8 text file of the template or script"),
    locale: str = typer.Option(..., "--locale", help="zh_CN or en"),
    audience: str = typer.Option("debtor", "--audience", help="debtor or third_party"),
    channel: str = typer.Option(..., "--channel", help="sms, email, letter or call"),
    kind: str | None = typer.Option(None, "--kind", help="e.g. validation_notice"),
    institution: str | None = typer.Option(
        None,
        "--institution",
        help="Institution code; its jurisdiction's rules apply (without it, the locale's)",
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Review a text for banned language and missing elements; exit 3 when anything is found."""
    with fail_on_domain_error():
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no file {file}; give the path of a UTF-8 text file") from None
        except UnicodeDecodeError:
            raise ValidationFailed(f"{file} is not UTF-8 text; save it as UTF-8") from None
        if institution is None:
            result = templates_service.review_text(
                text=text, locale=locale, audience=audience, channel=channel, kind=kind
            )
        else:
            with unit_of_work() as session:
                result = templates_service.review_for_institution(
                    session,
                    institution_id=require_by_code(session, institution).id,
                    text=text,
                    locale=locale,
                    audience=audience,
                    channel=channel,
                    kind=kind,
                )
    if as_json:
        typer.echo(json.dumps(_review_json(result), ensure_ascii=False))
    elif result.passed:
        console.print("[green]passed[/]: nothing found")
    else:
        console.print(f"[red]{len(result.findings)} finding(s)[/]")
        for finding in result.findings:
            where = f"[{finding.start}:{finding.end}]" if finding.end > finding.start else ""
            message = finding.message_en.removeprefix(f"{finding.rule_id} ")
            console.print(f"  {finding.rule_id} {where} {message}")
    if not result.passed:
        raise typer.Exit(code=BLOCKED_EXIT)


def _shown(value: object) -> str:
    """Return a parameter as a person reads it: lists as ``a, b``, not Python reprs."""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(item) for item in value)
    return str(value)
