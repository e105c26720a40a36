"""``recoup strategy`` against a SQLite file: create from a preset, check, activate, show."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recoup.cli import app
from recoup.db import unit_of_work
from tests.factories import make_institution
from tests.strategy.test_service import approve_preset_templates

runner = CliRunner()


def test_create_check_activate_and_show(cli_db: str, tmp_path: Path) -> None:
    with unit_of_work() as session:
        make_institution(session, code="CLI-STRAT", preset="commercial_bank")
    created = runner.invoke(
        app, ["strategy", "create", "bank", "--institution", "CLI-STRAT", "--name", "Bank"]
    )
    assert created.exit_code == 0, created.output
    shown = runner.invoke(app, ["strategy", "show", "bank", "--institution", "CLI-STRAT"])
    assert shown.exit_code == 0
    document = tmp_path / "bank.yaml"
    document.write_text(shown.stdout, encoding="utf-8")

    # The preset's templates are not approved here yet: errors, exit 3.
    checked = runner.invoke(
        app, ["strategy", "check", str(document), "--institution", "CLI-STRAT", "--json"]
    )
    assert checked.exit_code == 3, checked.output
    result = json.loads(checked.stdout)
    assert result["can_activate"] is False
    assert {f["code"] for f in result["findings"] if f["severity"] == "error"} == {
        "template_unknown"
    }
    refused = runner.invoke(
        app, ["strategy", "activate", "bank", "--institution", "CLI-STRAT", "--version", "1"]
    )
    assert refused.exit_code != 0

    with unit_of_work() as session:
        from sqlalchemy import select

        from recoup.models import Institution

        institution = session.execute(
            select(Institution).where(Institution.code == "CLI-STRAT")
        ).scalar_one()
        approve_preset_templates(session, institution)
    activated = runner.invoke(
        app, ["strategy", "activate", "bank", "--institution", "CLI-STRAT", "--version", "1"]
    )
    assert activated.exit_code == 0, activated.output
    listed = runner.invoke(app, ["strategy", "list", "--institution", "CLI-STRAT"])
    assert "in force: v1" in listed.output

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsegments:\n  - code: A\n", encoding="utf-8")
    problems = runner.invoke(app, ["strategy", "check", str(broken), "--institution", "CLI-STRAT"])
    assert problems.exit_code == 3
    assert "line 3" in problems.output
