"""Typed per-domain settings: validated on write with field-named errors, read by section."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import make_institution
from typer.testing import CliRunner

from recoup.cli import app
from recoup.db import unit_of_work
from recoup.institutions import service
from recoup.institutions.rules import PRESETS
from recoup.institutions.settings import settings_of, validate_settings
from recoup.kit.errors import ValidationFailed
from recoup.models import AuditEvent
from recoup.portfolio.service import waterfall_of
from recoup.scoring.service import grade_scale
from recoup.workbench.service import promise_settings


def _fields(error: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {item["field"]: item["message"] for item in error.value.extra["errors"]}


class TestValidation:
    @pytest.mark.parametrize("preset", sorted(PRESETS))
    def test_every_preset_is_valid_and_complete(self, preset: str) -> None:
        typed = validate_settings(PRESETS[preset])
        assert typed.model_dump(mode="json").keys() == PRESETS[preset].keys()

    def test_errors_name_the_field(self) -> None:
        with pytest.raises(ValidationFailed) as raised:
            validate_settings(
                {
                    "scoring": {"grade_thresholds": [0.1, 0.25, 0.4, 0.6]},
                    "workbench": {"promise_grace_days": -1},
                    "portfolio": {"waterfall": ["principal", "fees"]},
                    "workflow": {},
                }
            )
        fields = _fields(raised)
        assert "fall from grade A to grade D" in fields["scoring.grade_thresholds"]
        assert "greater than or equal to 0" in fields["workbench.promise_grace_days"]
        assert "exactly once" in fields["portfolio.waterfall"]
        assert "workflow" in fields
        assert "scoring.grade_thresholds:" in raised.value.message

    def test_bands_must_be_in_order(self) -> None:
        with pytest.raises(ValidationFailed, match="large_balance_minor must be above"):
            validate_settings({"scoring": {"small_balance_minor": 5, "large_balance_minor": 5}})

    def test_settings_written_before_sections_are_read_by_section(self) -> None:
        legacy = {
            "waterfall": ["interest", "fees", "penalty", "principal"],
            "grade_thresholds": [0.7, 0.5, 0.3, 0.1],
            "promise_grace_days": 9,
            "call_window_end": "21:00",  # no longer used: dropped
        }
        typed = validate_settings(legacy)
        assert typed.portfolio.waterfall[0] == "interest"
        assert typed.scoring.grade_thresholds == (0.7, 0.5, 0.3, 0.1)
        assert typed.workbench.promise_grace_days == 9
        assert typed.workbench.promise_horizon_days == 30  # the default


class TestUpdate:
    def test_a_partial_update_keeps_the_rest_is_audited_and_each_domain_sees_it(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        service.update_settings(
            session,
            institution=institution,
            changes={
                "workbench": {"promise_grace_days": 7},
                "portfolio": {"waterfall": ["principal", "interest", "fees", "penalty"]},
            },
            actor="test",
        )
        assert promise_settings(institution).grace_days == 7
        assert promise_settings(institution).horizon_days == 30
        assert waterfall_of(institution) == ("principal", "interest", "fees", "penalty")
        assert grade_scale(institution).cutoffs[0] == pytest.approx(0.4)  # preset kept
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "institution.settings")
        ).one()
        assert event.details["changed"]["workbench.promise_grace_days"] == {"old": 3, "new": 7}

    def test_an_invalid_update_changes_nothing(self, session: Session) -> None:
        institution = make_institution(session)
        before = dict(institution.settings)
        with pytest.raises(ValidationFailed) as raised:
            service.update_settings(
                session,
                institution=institution,
                changes={"workbench": {"promise_horizon_days": 1000}},
                actor="test",
            )
        assert "workbench.promise_horizon_days" in _fields(raised)
        assert institution.settings == before

    def test_stored_settings_that_are_not_valid_are_refused_where_read(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        institution.settings = {"scoring": {"grade_thresholds": [2, 1, 0.5, 0.1]}}
        with pytest.raises(ValidationFailed, match=rf"institution {institution.code}: .*grade"):
            settings_of(institution)


class TestCli:
    def test_show_and_set(self, cli_db: str) -> None:
        runner = CliRunner()
        created = runner.invoke(
            app,
            ["institutions", "create", "SET1", "--name", "Lender", "--preset", "commercial_bank"],
        )
        assert created.exit_code == 0, created.output
        shown = runner.invoke(app, ["institutions", "settings", "SET1"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["workbench"]["promise_grace_days"] == 5
        changed = runner.invoke(
            app,
            ["institutions", "settings", "SET1", "--set", "workbench.promise_grace_days=2"],
        )
        assert changed.exit_code == 0, changed.output
        assert json.loads(changed.output)["workbench"]["promise_grace_days"] == 2
        with unit_of_work() as session:
            from recoup.institutions import repository

            stored = repository.get_by_code(session, "SET1")
            assert stored is not None
            assert stored.settings["workbench"]["promise_grace_days"] == 2

    def test_refusals_say_what_to_write(self, cli_db: str) -> None:
        runner = CliRunner()
        runner.invoke(app, ["institutions", "create", "SET2", "--name", "Lender"])
        malformed = runner.invoke(app, ["institutions", "settings", "SET2", "--set", "grace=2"])
        assert malformed.exit_code == 2
        assert "SECTION.NAME=VALUE" in malformed.output
        invalid = runner.invoke(
            app, ["institutions", "settings", "SET2", "--set", "scoring.grade_thresholds=[1,2]"]
        )
        assert invalid.exit_code == 1
        assert "scoring.grade_thresholds" in invalid.output
        unknown = runner.invoke(app, ["institutions", "settings", "NOPE"])
        assert unknown.exit_code == 1
        assert "no institution 'NOPE'" in unknown.output
