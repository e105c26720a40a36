import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cli import app
from recoup.institutions.service import create_institution
from recoup.kit.errors import Conflict, ValidationFailed


class TestCreateInstitution:
    def test_creates_with_preset_settings(self, session: Session) -> None:
        institution = create_institution(
            session,
            code="CF1",
            name="Lender",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="consumer_finance",
        )
        assert institution.settings["portfolio"]["waterfall"][0] == "penalty"

    def test_reports_every_problem_at_once(self, session: Session) -> None:
        with pytest.raises(ValidationFailed) as raised:
            create_institution(
                session,
                code="!",
                name=" ",
                jurisdiction="XX",
                timezone="Mars/Base",
                currency="ABC",
                preset="bank",
            )
        message = raised.value.message
        for fragment in ("code", "name", "jurisdiction", "Mars/Base", "ABC", "preset"):
            assert fragment in message

    def test_refuses_duplicate_code(self, session: Session) -> None:
        kwargs = dict(
            code="DUP",
            name="A",
            jurisdiction="US",
            timezone="America/New_York",
            currency="USD",
            preset="commercial_bank",
        )
        create_institution(session, **kwargs)
        with pytest.raises(Conflict, match="already exists"):
            create_institution(session, **kwargs)


class TestInstitutionsCli:
    def test_create_then_list(self, cli_db: str) -> None:
        runner = CliRunner()
        result = runner.invoke(
            app,
            [
                "institutions",
                "create",
                "ACME",
                "--name",
                "Acme 消费金融",
                "--preset",
                "consumer_finance",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "Created institution" in result.output
        listed = runner.invoke(app, ["institutions", "list"])
        assert "ACME" in listed.output

    def test_bad_input_is_a_message_not_a_traceback(self, cli_db: str) -> None:
        result = CliRunner().invoke(
            app, ["institutions", "create", "X1", "--name", "n", "--timezone", "Nowhere/Place"]
        )
        assert result.exit_code == 1
        assert "unknown time zone" in result.output
        assert "Traceback" not in result.output
