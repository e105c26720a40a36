"""``recoup accounts assign``: hand accounts to a certified agent."""

from __future__ import annotations

import typer

from recoup.db import unit_of_work
from recoup.identity.repository import get_user_by_username
from recoup.institutions.repository import require_by_code
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import NotFound
from recoup.portfolio import service

app = typer.Typer(help="Work with accounts.", no_args_is_help=True)

CLI_ACTOR = "cli"


@app.command("assign")
def assign(
    account_external_ids: list[str] = typer.Argument(..., help="External ids of the accounts"),
    institution: str = typer.Option(..., "--institution", help="Institution code, e.g. DEMO-CF"),
    agent: str = typer.Option(..., "--agent", help="Username of an active, certified agent"),
) -> None:
    """Assign accounts to an agent; refused unless the agent holds a valid certificate."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = require_by_code(session, institution)
        user = get_user_by_username(session, agent)
        if user is None or user.institution_id != owner.id:
            raise NotFound(f"no user {agent} in institution {institution}")
        account_ids = service.account_ids_for_external_ids(
            session, institution_id=owner.id, external_ids=account_external_ids
        )
        accounts = service.assign_accounts(
            session,
            institution_id=owner.id,
            agent_id=user.id,
            account_ids=account_ids,
            actor=CLI_ACTOR,
        )
    console.print(f"assigned {len(accounts)} account(s) to {agent}")
