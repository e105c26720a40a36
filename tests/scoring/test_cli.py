"""``recoup model train|list|promote`` on an external CSV, against a temporary SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session
from time_machine import TimeMachineFixture
from typer.testing import CliRunner

from recoup.cli import app
from recoup.db import unit_of_work
from recoup.identity import service as identity
from tests.factories import make_institution
from tests.scoring.conftest import make_credit_frame

runner = CliRunner()


def _users(*roles: str) -> None:
    """Create one user per role (username = role) in a fresh institution of the CLI database."""
    with unit_of_work() as session:
        institution = make_institution(session)
        for role in roles:
            identity.create_user(
                session,
                username=role,
                role=role,
                institution_id=institution.id,
                password="Correct-horse-42",
                actor="test",
            )


def _write_csv(tmp_path: Path) -> Path:
    path = tmp_path / "credit.csv"
    make_credit_frame(1200).to_csv(path, index=False)
    return path


class TestModelCommands:
    def test_train_json_list_and_promote(self, cli_db: str, tmp_path: Path) -> None:
        data = _write_csv(tmp_path)
        trained = runner.invoke(
            app,
            [
                "model",
                "train",
                "--data",
                str(data),
                "--target",
                "defaulted",
                "--id-column",
                "ID",
                "--seed",
                "3",
                "--json",
            ],
        )
        assert trained.exit_code == 0, trained.output
        metrics = json.loads(trained.stdout.strip().splitlines()[-1])
        assert {
            "auc",
            "ks",
            "gini",
            "brier",
            "n_train",
            "n_test",
            "family",
            "model_version",
        } <= set(metrics)
        assert metrics["family"] == "scorecard"
        assert (metrics["n_train"], metrics["n_test"]) == (840, 360)
        assert metrics["auc"] > 0.7

        gbm = runner.invoke(
            app,
            [
                "model",
                "train",
                "--data",
                str(data),
                "--target",
                "defaulted",
                "--family",
                "gbm",
                "--json",
            ],
        )
        assert gbm.exit_code == 0, gbm.output
        assert json.loads(gbm.stdout.strip().splitlines()[-1])["family"] == "gbm"

        listed = runner.invoke(app, ["model", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        rows = [json.loads(line) for line in listed.stdout.strip().splitlines()]
        assert {row["state"] for row in rows} == {"candidate"}
        assert metrics["model_version"] in {row["model_version"] for row in rows}

        _users("data_scientist", "agent")
        refused = runner.invoke(
            app, ["model", "promote", metrics["model_version"], "--actor", "agent"]
        )
        assert refused.exit_code == 1
        assert "may not promote models" in refused.output
        promoted = runner.invoke(
            app, ["model", "promote", metrics["model_version"], "--actor", "data_scientist"]
        )
        assert promoted.exit_code == 0, promoted.output
        assert "is now the champion" in promoted.output
        states = {
            json.loads(line)["model_version"]: json.loads(line)["state"]
            for line in runner.invoke(app, ["model", "list", "--json"]).stdout.strip().splitlines()
        }
        assert states[metrics["model_version"]] == "champion"

    def test_human_output_shows_the_scorecard_table(self, cli_db: str, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["model", "train", "--data", str(_write_csv(tmp_path)), "--target", "defaulted"]
        )
        assert result.exit_code == 0, result.output
        assert "AUC" in result.output
        assert "months_late" in result.output

    def test_a_missing_target_column_is_a_one_line_error(self, cli_db: str, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["model", "train", "--data", str(_write_csv(tmp_path)), "--target", "nope"]
        )
        assert result.exit_code == 1
        assert "target column 'nope' is not in the data" in result.output

    def test_an_unknown_version_cannot_be_promoted(self, cli_db: str) -> None:
        _users("manager")
        result = runner.invoke(
            app, ["model", "promote", "scorecard-20250101-000000000000", "--actor", "manager"]
        )
        assert result.exit_code == 1
        assert "no model version" in result.output

    def test_promote_without_actor_is_recorded_as_the_cli_operator(
        self, cli_db: str, tmp_path: Path
    ) -> None:
        trained = runner.invoke(
            app,
            [
                "model",
                "train",
                "--data",
                str(_write_csv(tmp_path)),
                "--target",
                "defaulted",
                "--json",
            ],
        )
        version = json.loads(trained.stdout.strip().splitlines()[-1])["model_version"]
        promoted = runner.invoke(app, ["model", "promote", version])
        assert promoted.exit_code == 0, promoted.output
        assert "promoted by cli:" in promoted.output

    def test_promotion_names_a_known_user(self, cli_db: str) -> None:
        result = runner.invoke(app, ["model", "promote", "scorecard-x", "--actor", "nobody"])
        assert result.exit_code == 1
        assert "no active user 'nobody'" in result.output

    def test_training_on_the_portfolio_needs_an_institution(self, cli_db: str) -> None:
        result = runner.invoke(app, ["model", "train"])
        assert result.exit_code == 1
        assert "--institution CODE" in result.output

    def test_realised_performance_names_an_unknown_version(self, cli_db: str) -> None:
        with unit_of_work() as session:
            code = make_institution(session).code
        result = runner.invoke(
            app,
            [
                "model",
                "realised",
                "--institution",
                code,
                "--as-of",
                "2999-01-01",
                "--version",
                "scorecard-20250101-000000000000",
            ],
        )
        assert result.exit_code == 1
        assert "no model version" in result.output


def _train_json(*arguments: str) -> dict[str, object]:
    result = runner.invoke(app, ["model", "train", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    trained: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return trained


class TestFileModels:
    def test_score_a_file_with_a_trained_model(self, cli_db: str, tmp_path: Path) -> None:
        data = _write_csv(tmp_path)
        trained = _train_json("--data", str(data), "--target", "defaulted", "--id-column", "ID")
        assert isinstance(trained["ece"], float)
        assert trained["ece"] < 0.05
        to_score = tmp_path / "new.csv"
        make_credit_frame(40, seed=99).drop(columns=["defaulted"]).to_csv(
            to_score, sep=";", index=False
        )
        out = tmp_path / "scores.csv"
        result = runner.invoke(
            app,
            [
                "model",
                "score",
                "--data",
                str(to_score),
                "--version",
                str(trained["model_version"]),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "scored 40 rows" in result.output
        scores = pd.read_csv(out)
        assert list(scores.columns) == [
            "ID",
            "probability",
            "points",
            "grade",
            "reasons_en",
            "reasons_zh",
        ]
        assert scores["probability"].between(0, 1).all()
        assert set(scores["grade"]) <= set("ABCDE")
        assert scores["reasons_en"].str.len().gt(0).any()
        assert scores["reasons_zh"].str.contains("不利|逾期|额度", regex=True).any()

    def test_scoring_a_file_needs_version_and_out(self, cli_db: str, tmp_path: Path) -> None:
        result = runner.invoke(app, ["model", "score", "--data", str(_write_csv(tmp_path))])
        assert result.exit_code == 1
        assert "--data needs --version VERSION and --out FILE" in result.output

    def test_a_file_model_cannot_be_an_institutions_champion(
        self, cli_db: str, tmp_path: Path
    ) -> None:
        with unit_of_work() as session:
            code = make_institution(session).code
        trained = _train_json(
            "--data", str(_write_csv(tmp_path)), "--target", "defaulted", "--institution", code
        )
        refused = runner.invoke(app, ["model", "promote", str(trained["model_version"])])
        assert refused.exit_code == 1
        message = " ".join(refused.output.split())
        assert (
            "reads 3 column(s) the portfolio does not have (months_late, income, noise)" in message
        )
        listed = runner.invoke(app, ["model", "list", "--json"])
        (row,) = [json.loads(line) for line in listed.stdout.strip().splitlines()]
        assert row["state"] == "candidate"

    def test_list_shows_target_and_seed(self, cli_db: str, tmp_path: Path) -> None:
        _train_json("--data", str(_write_csv(tmp_path)), "--target", "defaulted", "--seed", "7")
        listed = runner.invoke(app, ["model", "list", "--json"])
        (row,) = [json.loads(line) for line in listed.stdout.strip().splitlines()]
        assert (row["target"], row["seed"]) == ("defaulted", 7)

    def test_the_training_report_shows_calibration_and_what_became_of_columns(
        self, cli_db: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "messy.csv"
        frame = make_credit_frame(1200)
        frame["income"] = frame["income"].map(lambda value: f"${value:,.2f}", na_action="ignore")
        frame["opened"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(frame["ID"] % 700, unit="D")
        frame.to_csv(path, index=False)
        result = runner.invoke(
            app,
            ["model", "train", "--data", str(path), "--target", "defaulted", "--id-column", "ID"],
        )
        assert result.exit_code == 0, result.output
        assert "ECE" in result.output
        assert "held-out calibration" in result.output
        assert "'income' read as numbers" in result.output
        assert "left out opened: dates" in result.output

    def test_a_json_file_is_refused_in_plain_words(self, cli_db: str, tmp_path: Path) -> None:
        path = tmp_path / "accounts.json"
        path.write_text('[{"defaulted": 1}]')
        result = runner.invoke(
            app, ["model", "train", "--data", str(path), "--target", "defaulted"]
        )
        assert result.exit_code == 1
        assert "not CSV: it looks like JSON" in result.output


class TestScoringDay:
    def test_without_as_of_it_is_today_in_the_institutions_zone(
        self, session: Session, time_machine: TimeMachineFixture
    ) -> None:
        """At 01:00 in Shanghai on New Year's Day the server's UTC date is still the 31st."""
        from recoup.scoring.cli import _as_of

        institution = make_institution(session, timezone="Asia/Shanghai")
        time_machine.move_to(datetime(2026, 12, 31, 17, 0, tzinfo=UTC), tick=False)
        assert _as_of(None, institution) == date(2027, 1, 1)
        assert _as_of("2026-06-30", institution) == date(2026, 6, 30)
