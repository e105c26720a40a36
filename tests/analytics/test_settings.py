"""The analytics settings: channel costs in major units and P(kept)'s history, set like any."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from recoup.cli import app
from recoup.institutions.rules import PRESETS
from recoup.institutions.settings import validate_settings
from recoup.kit.errors import ValidationFailed


def _fields(error: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {item["field"]: item["message"] for item in error.value.extra["errors"]}


class TestValidation:
    def test_defaults_cost_a_call_more_than_a_message(self) -> None:
        analytics = validate_settings({}).analytics
        assert analytics.contact_cost["call"] == Decimal("1.50")
        assert analytics.contact_cost["sms"] == Decimal("0.05")
        assert (analytics.kept_rate_days, analytics.min_promises_per_bucket) == (90, 30)

    @pytest.mark.parametrize("preset", sorted(PRESETS))
    def test_every_preset_prices_every_channel(self, preset: str) -> None:
        costs = validate_settings(PRESETS[preset]).analytics.contact_cost
        assert set(costs) == {"call", "ai_call", "sms", "email", "letter", "visit"}

    def test_costs_are_exact_decimals_never_negative_or_finer_than_four_places(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            validate_settings(
                {"analytics": {"contact_cost": {"call": "-1", "sms": "0.00001", "": "1"}}}
            )
        fields = _fields(refused)
        assert "greater than or equal to 0" in fields["analytics.contact_cost.call"]
        assert "4 decimal places" in fields["analytics.contact_cost.sms"]
        with pytest.raises(ValidationFailed, match="1–32 characters"):
            validate_settings({"analytics": {"contact_cost": {" ": "1"}}})
        with pytest.raises(ValidationFailed) as refused:
            validate_settings({"analytics": {"kept_rate_days": 0}})
        assert "analytics.kept_rate_days" in _fields(refused)


class TestCli:
    def test_set_and_show(self, cli_db: str) -> None:
        runner = CliRunner()
        created = runner.invoke(app, ["institutions", "create", "KPI1", "--name", "Lender"])
        assert created.exit_code == 0, created.output
        changed = runner.invoke(
            app,
            [
                "institutions",
                "settings",
                "KPI1",
                "--set",
                'analytics.contact_cost={"call": 1.2, "sms": "0.06"}',
                "--set",
                "analytics.min_promises_per_bucket=50",
            ],
        )
        assert changed.exit_code == 0, changed.output
        shown = json.loads(changed.output)["analytics"]
        assert shown["contact_cost"] == {"call": "1.2", "sms": "0.06"}
        assert shown["min_promises_per_bucket"] == 50
        assert shown["kept_rate_days"] == 90
        refused = runner.invoke(
            app, ["institutions", "settings", "KPI1", "--set", "analytics.kept_rate_days=1000"]
        )
        assert refused.exit_code == 1
        assert "analytics.kept_rate_days" in refused.output
