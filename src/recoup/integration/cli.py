"""``recoup integrate …``: bring in data from the systems Recoup sits on (Apache Fineract)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from recoup.db import unit_of_work
from recoup.enums import Product
from recoup.identity.scoping import institution_scope
from recoup.institutions.repository import require_by_code
from recoup.integration import fineract, service
from recoup.kit.cli import console, error_console, fail_on_domain_error

app = typer.Typer(help="Bring in data from core banking systems (Apache Fineract).")


@app.callback()
def _group() -> None:
    """Bring in data from core banking systems."""


@app.command("fineract-import")
def fineract_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A JSON dump of Fineract loans"
    ),
    institution: str = typer.Option(..., "--institution", help="Institution code, e.g. BANK1"),
    product: Product = typer.Option(
        Product.consumer_loan, "--product", help="The Recoup product of these loans"
    ),
) -> None:
    """Import Fineract loans (a list of GET /v1/loans/{id}?associations=… answers, or a page
    {"pageItems": [...]}): clients become debtors, loans accounts, repayments payments.

    Exits 1 when the file is not a loan dump, 3 when some loans were refused (the others
    are imported; each refusal names the loan and the field).
    """
    try:
        dump = json.loads(file.read_text(encoding="utf-8"))
        loans = fineract.loans_of_dump(dump)
    except (ValueError, UnicodeDecodeError) as error:
        error_console.print(f"[red]error:[/] {file}: {error}")
        raise typer.Exit(code=1) from None
    with fail_on_domain_error(), unit_of_work() as session:
        found = require_by_code(session, institution)
        done = service.import_fineract_loans(
            session,
            institution=found,
            principal=institution_scope(found.id, actor="cli:fineract-import"),
            loans=loans,
            product=product,
            file_name=file.name[:255],
        )
    refused = [loan for loan in done.loans if loan.status == "rejected"]
    table = Table("loans", "accepted", "refused", "accounts new", "accounts updated", "debtors new")
    table.add_row(
        str(len(done.loans)),
        str(len(done.loans) - len(refused)),
        str(len(refused)),
        str(done.accounts_inserted),
        str(done.accounts_updated),
        str(done.debtors_created),
    )
    console.print(table)
    payments = ", ".join(f"{status} {count}" for status, count in sorted(done.payments.items()))
    console.print(f"repayments: {payments or 'none'}")
    if done.reversals:
        reversals = ", ".join(
            f"{status} {count}" for status, count in sorted(done.reversals.items())
        )
        console.print(f"reversed repayments: {reversals}")
    for loan in refused:
        for problem in loan.errors:
            error_console.print(
                f"loan {loan.loan_id if loan.loan_id is not None else '?'} "
                f"(item {loan.index}): {problem.field}: {problem.message}"
            )
    if refused:
        raise typer.Exit(code=3)


@app.command("drop-scan")
def drop_scan(
    institution: str = typer.Option(..., "--institution", help="Institution code, e.g. BANK1"),
) -> None:
    """Import the files waiting in the institution's drop folder now (the job does it every
    minute when ``integration.drop_enabled`` is on); print what became of each."""
    from recoup.integration import drops

    with fail_on_domain_error(), unit_of_work() as session:
        found = require_by_code(session, institution)
        console.print(f"drop folder: {drops.folder_of(found)}")
        outcomes = drops.scan(session, institution=found)
    if not outcomes:
        console.print("no file ready")
    for outcome in outcomes:
        console.print(
            f"{outcome.name}: {outcome.status} → {outcome.moved_to} ({outcome.report.name})"
        )
