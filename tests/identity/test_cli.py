from sqlalchemy import select
from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.identity import service
from recoup.models import ApiKey, User
from tests.factories import make_institution
from tests.identity.helpers import PASSWORD

runner = CliRunner()


def _institution(code: str) -> None:
    with unit_of_work() as session:
        make_institution(session, code=code)


def test_users_create_and_list(cli_db: str) -> None:
    _institution("CLI-A")
    created = runner.invoke(
        cli,
        [
            "users",
            "create",
            "li.lei",
            "--role",
            "agent",
            "--institution",
            "CLI-A",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )
    assert created.exit_code == 0, created.output
    assert "Created user li.lei (agent, institution CLI-A)" in created.output
    platform = runner.invoke(
        cli,
        ["users", "create", "root", "--platform-admin", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert platform.exit_code == 0, platform.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "li.lei" in listed.output
    assert "(platform)" in listed.output
    with unit_of_work() as session:
        user = session.scalars(select(User).where(User.username == "li.lei")).one()
        assert (
            service.authenticate(session, username="li.lei", password=PASSWORD, ip="cli").id
            == user.id
        )


def test_users_create_reports_problems(cli_db: str) -> None:
    _institution("CLI-B")
    weak = runner.invoke(
        cli,
        [
            "users",
            "create",
            "han.mei",
            "--role",
            "agent",
            "--institution",
            "CLI-B",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert weak.exit_code == 1
    assert "at least 12 characters" in weak.output
    unknown = runner.invoke(
        cli,
        [
            "users",
            "create",
            "han.mei",
            "--role",
            "agent",
            "--institution",
            "NOPE",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )
    assert unknown.exit_code == 1
    assert "no institution with code 'NOPE'" in unknown.output
    neither = runner.invoke(
        cli,
        ["users", "create", "han.mei", "--role", "agent", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert neither.exit_code == 1
    assert "--institution CODE or --platform-admin" in neither.output


def test_apikeys_create_prints_once_then_revoke(cli_db: str) -> None:
    _institution("CLI-C")
    created = runner.invoke(
        cli,
        [
            "apikeys",
            "create",
            "--institution",
            "CLI-C",
            "--scopes",
            "payments:write,accounts:read",
            "--name",
            "core",
        ],
    )
    assert created.exit_code == 0, created.output
    plaintext = created.output.strip().splitlines()[-1]
    assert plaintext.startswith("rk_")
    with unit_of_work() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert plaintext not in stored.key_hash
        assert service.api_key_for(session, plaintext).id == stored.id
        prefix = stored.prefix
    listed = runner.invoke(cli, ["apikeys", "list"])
    assert prefix in listed.output
    assert plaintext not in listed.output
    revoked = runner.invoke(cli, ["apikeys", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(cli, ["apikeys", "revoke", prefix])
    assert again.exit_code == 1
    assert "already revoked" in again.output
    bad = runner.invoke(
        cli,
        ["apikeys", "create", "--institution", "CLI-C", "--scopes", "users:manage", "--name", "x"],
    )
    assert bad.exit_code == 1
    assert "cannot be given to an API key" in bad.output
