"""``recoup scripts seed|performance`` through Typer's runner on a SQLite file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.db import unit_of_work
from tests.factories import make_institution
from tests.identity.helpers import make_user

runner = CliRunner()
CODE = "CLI-SCR"


def test_seed_submits_the_defaults_once_and_performance_lists_them(cli_db: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session, code=CODE)
        make_user(session, institution, role="manager", username="writer")
        make_user(session, institution, role="agent", username="caller")
    seeded = runner.invoke(cli, ["scripts", "seed", "--institution", CODE, "--author", "writer"])
    assert seeded.exit_code == 0, seeded.output
    assert "18 default scripts submitted for review (18 with no findings)" in seeded.output
    again = runner.invoke(cli, ["scripts", "seed", "--institution", CODE, "--author", "writer"])
    assert "0 default scripts" in again.output
    agent = runner.invoke(cli, ["scripts", "seed", "--institution", CODE, "--author", "caller"])
    assert agent.exit_code != 0
    assert "--author" in agent.output
    listed = runner.invoke(cli, ["scripts", "performance", "--institution", CODE, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 18
    assert {row["attempts"] for row in rows} == {0}
    bad = runner.invoke(
        cli, ["scripts", "performance", "--institution", CODE, "--since", "yesterday"]
    )
    assert bad.exit_code != 0
    assert "--since" in bad.output
