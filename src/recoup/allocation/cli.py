"""``recoup allocate``: give the day's case work to agents, within capacity, skills and rules."""

from __future__ import annotations

import json
from datetime import date

import typer

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import ValidationFailed
from recoup.kit.money import format_amount

CLI_ACTOR = "cli"


def allocate_command(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Allocate for this day (YYYY-MM-DD); the institution's today"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the allocation without changing who owns which case"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object"),
) -> None:
    """Allocate open cases to agents within capacity, skills, queues, regions and certificates."""
    from recoup.allocation import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        if as_of is None:
            day = clock.local_today(owner.timezone)
        else:
            try:
                day = date.fromisoformat(as_of)
            except ValueError:
                raise ValidationFailed(
                    f"--as-of must be a date like 2027-03-01; got {as_of!r}"
                ) from None
        report = service.allocate(
            session, institution=owner, as_of=day, actor=CLI_ACTOR, dry_run=dry_run
        )
        if as_json:
            typer.echo(json.dumps({"institution": owner.code, **report.summary()}))
            return
        gain = report.objective / report.greedy_objective if report.greedy_objective else 1.0

        def money(minor: int) -> str:
            return format_amount(minor, owner.currency, locale="en")

        scored = report.scored > 0 or not report.cases
        console.print(
            f"{owner.code} {day.isoformat()}{' (dry run)' if dry_run else ''}: "
            f"{report.assigned:,} of {report.cases:,} cases on the worklists of "
            f"{report.agents} agents, {report.unassigned:,} wait for another day; "
            f"{report.changed:,} change owner"
            + (
                f". Expected recovery {money(report.objective)} (greedy "
                f"{money(report.greedy_objective)}, {gain:.3f}×; round-robin "
                f"{money(report.round_robin_objective)}), found in {report.seconds:.2f} s."
                if scored
                else "."
            )
        )
        if not scored:
            console.print(
                "No case has a score yet, so cases were taken in turn: train and run a model "
                "(recoup model train, recoup model score) to put the most valuable first."
            )
