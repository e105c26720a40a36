"""``recoup institutions …``"""

from __future__ import annotations

import typer
from rich.table import Table

from recoup.db import unit_of_work
from recoup.institutions import repository, service
from recoup.kit.cli import console, fail_on_domain_error

app = typer.Typer(help="Manage institutions (tenants).", no_args_is_help=True)


@app.command("create")
def create(
    code: str = typer.Argument(..., help="Short unique code, e.g. DEMO-CF"),
    name: str = typer.Option(..., "--name", help="Display name"),
    jurisdiction: str = typer.Option("CN", "--jurisdiction", help="CN or US"),
    timezone: str = typer.Option("Asia/Shanghai", "--timezone", help="IANA time zone"),
    currency: str = typer.Option("CNY", "--currency", help="ISO 4217 code"),
    preset: str = typer.Option(
        "consumer_finance", "--preset", help="consumer_finance or commercial_bank"
    ),
) -> None:
    """Add an institution with its preset settings."""
    with fail_on_domain_error(), unit_of_work() as session:
        institution = service.create_institution(
            session,
            code=code,
            name=name,
            jurisdiction=jurisdiction,
            timezone=timezone,
            currency=currency,
            preset=preset,
            actor="cli",
        )
        console.print(f"Created institution [bold]{institution.code}[/] ({institution.name}).")


@app.command("list")
def list_institutions() -> None:
    """Show every institution."""
    with unit_of_work() as session:
        table = Table("code", "name", "jurisdiction", "timezone", "currency", "preset")
        for item in repository.list_all(session):
            table.add_row(
                item.code, item.name, item.jurisdiction, item.timezone, item.currency, item.preset
            )
        console.print(table)
