"""``recoup scripts``: draft the default call scripts for review, compare scripts by outcome."""

from __future__ import annotations

import json
from datetime import date, timedelta

import typer

from recoup.db import unit_of_work
from recoup.identity import repository as identity_repository
from recoup.identity.permissions import MATRIX
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import NotFound, ValidationFailed

app = typer.Typer(help="Call scripts: defaults and outcomes.", no_args_is_help=True)


@app.command("seed")
def seed_command(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    author: str = typer.Option(
        ..., "--author", help="Username of the manager or compliance officer drafting them"
    ),
) -> None:
    """Draft and submit the default scripts (zh-CN, en-US) the institution has none of yet.

    A compliance officer other than the author approves them on the template review page.
    """
    from recoup.scripts import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        user = identity_repository.get_user_by_username(session, author)
        if user is None or user.institution_id != owner.id:
            raise NotFound(f"--author: no user {author!r} in {owner.code}")
        if str(user.role) not in MATRIX["templates:write"].roles:
            raise ValidationFailed(
                f"--author: {author} is a {user.role}; "
                "a manager or compliance officer drafts scripts"
            )
        created = service.seed_default_scripts(
            session, institution_id=owner.id, author=user.username, author_id=user.id
        )
        passed = sum(1 for script in created if not script.findings)
        console.print(
            f"{owner.code}: {len(created)} default scripts submitted for review "
            f"({passed} with no findings); a compliance officer approves them."
        )


@app.command("performance")
def performance_command(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD)"),
    until: str | None = typer.Option(None, "--until", help="Day after the last (YYYY-MM-DD)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per script"),
) -> None:
    """Compare scripts by their contacts: promise, kept, dispute and complaint rates."""
    from recoup.scripts import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        end = _day("--until", until) or clock.local_today(owner.timezone) + timedelta(days=1)
        start = _day("--since", since) or end - timedelta(days=90)
        rows = service.script_performance(session, institution_id=owner.id, since=start, until=end)
        for row in rows:
            figures = {
                "script_id": row.script.id,
                "name": row.script.name,
                "situation": row.script.situation,
                "locale": row.script.locale,
                "attempts": row.outcomes.attempts,
                "promise_rate": row.rates.promise_rate,
                "kept_rate": row.rates.kept_rate,
                "disputes": row.outcomes.disputes,
                "complaints": row.outcomes.complaints,
            }
            if as_json:
                typer.echo(json.dumps(figures, ensure_ascii=False))
            else:
                console.print(
                    f"{row.script.id:>5} {row.script.situation or '-':<22} {row.script.locale:<6} "
                    f"{row.outcomes.attempts:>6} attempts"
                    f"  promise {_percent(row.rates.promise_rate)}"
                    f"  kept {_percent(row.rates.kept_rate)}  disputes {row.outcomes.disputes}"
                    f"  complaints {row.outcomes.complaints}  {row.script.name}"
                )


def _day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{option} must be a date like 2027-03-01; got {value!r}") from None


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"
