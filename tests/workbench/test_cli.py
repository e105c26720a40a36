"""``recoup promises reconcile`` against a SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import select
from typer.testing import CliRunner

from recoup.cli import app
from recoup.db import unit_of_work
from recoup.models.workbench import Promise, PromiseStatus
from tests.factories import make_account, make_debtor, make_institution
from tests.workbench.helpers import add_payment, add_promise

runner = CliRunner()


def test_reconcile_prints_counts_as_json_and_text(cli_db: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session, code="CLI-PTP")
        debtor = make_debtor(session, institution)
        paid, unpaid = make_account(session, debtor), make_account(session, debtor)
        for account in (paid, unpaid):
            add_promise(
                session,
                account,
                amount=1_000,
                promised_on=date(2026, 1, 1),
                due_date=date(2026, 1, 5),
            )
        add_payment(session, paid, amount=1_000, paid_at=datetime(2026, 1, 4, 2, tzinfo=UTC))

    result = runner.invoke(
        app,
        ["promises", "reconcile", "--institution", "CLI-PTP", "--as-of", "2026-01-20", "--json"],
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["institution"] == "CLI-PTP"
    assert (counts["examined"], counts["kept"], counts["broken"]) == (2, 1, 1)
    with unit_of_work() as session:
        statuses = sorted(str(s) for s in session.execute(select(Promise.status)).scalars())
    assert statuses == [PromiseStatus.broken, PromiseStatus.kept]

    again = runner.invoke(
        app, ["promises", "reconcile", "--institution", "CLI-PTP", "--as-of", "2026-01-20"]
    )
    assert again.exit_code == 0, again.output
    assert "0 pending promises examined" in again.stdout


def test_bad_input_is_a_one_line_error(cli_db: str) -> None:
    unknown = runner.invoke(app, ["promises", "reconcile", "--institution", "NOPE"])
    assert unknown.exit_code == 1
    assert "error:" in unknown.output
    with unit_of_work() as session:
        make_institution(session, code="CLI-DATE")
    bad = runner.invoke(
        app, ["promises", "reconcile", "--institution", "CLI-DATE", "--as-of", "20/01/2026"]
    )
    assert bad.exit_code == 1
    assert "--as-of must be a date" in bad.output
