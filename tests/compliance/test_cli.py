"""``recoup compliance rules|check|outcome|decisions|review`` through Typer's runner on a SQLite file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.db import unit_of_work
from tests.factories import make_account, make_contact_point, make_debtor, make_institution

runner = CliRunner()
CODE = "CLI-CMP"


@dataclass(frozen=True)
class Ids:
    debtor: int
    contact_point: int
    account: int


def _seed() -> Ids:
    with unit_of_work() as session:
        institution = make_institution(session, code=CODE)
        debtor = make_debtor(session, institution)
        contact = make_contact_point(session, debtor)
        account = make_account(session, debtor)
        return Ids(debtor=debtor.id, contact_point=contact.id, account=account.id)


def _check(ids: Ids, at: str, *extra: str) -> list[str]:
    return [
        "compliance",
        "check",
        "--institution",
        CODE,
        "--debtor",
        str(ids.debtor),
        "--contact-point",
        str(ids.contact_point),
        "--channel",
        "call",
        "--party",
        "debtor",
        "--at",
        at,
        *extra,
    ]


def test_rules_lists_ids_parameters_and_citations(cli_db: str) -> None:
    as_json = runner.invoke(cli, ["compliance", "rules", "--pack", "US", "--json"])
    assert as_json.exit_code == 0, as_json.output
    (pack,) = json.loads(as_json.stdout)
    assert pack["pack"] == "US"
    rules = {rule["id"]: rule for rule in pack["rules"]}
    assert rules["US-7IN7"]["parameters"]["max_calls"] == 7
    assert rules["US-SOL"]["citation"] == "12 CFR 1006.26(b)"
    both = json.loads(runner.invoke(cli, ["compliance", "rules", "--json"]).stdout)
    assert [item["pack"] for item in both] == ["CN", "CN-LOCAL", "US"]
    table = runner.invoke(cli, ["compliance", "rules", "--pack", "cn"])
    assert table.exit_code == 0
    assert "CN-HRS" in table.output
    unknown = runner.invoke(cli, ["compliance", "rules", "--pack", "UK"])
    assert unknown.exit_code == 1
    assert "UK" in unknown.output


def test_check_exits_0_when_allowed_and_3_when_blocked(cli_db: str) -> None:
    ids = _seed()
    allowed = runner.invoke(cli, _check(ids, "2025-03-03T10:00:00+08:00", "--json"))
    assert allowed.exit_code == 0, allowed.output
    answer = json.loads(allowed.stdout)
    assert answer["allowed"] is True
    assert answer["reasons"] == []
    assert answer["next_allowed_at"] is None
    assert isinstance(answer["decision_id"], int)

    blocked = runner.invoke(cli, _check(ids, "2025-03-03T21:30:00+08:00", "--json"))
    assert blocked.exit_code == 3, blocked.output
    answer = json.loads(blocked.stdout)
    assert answer["allowed"] is False
    assert [reason["rule_id"] for reason in answer["reasons"]] == ["CN-HRS"]
    assert answer["next_allowed_at"] == "2025-03-04T08:00:00+08:00"
    assert set(answer["reasons"][0]) == {"rule_id", "code", "message", "message_zh"}

    text = runner.invoke(cli, _check(ids, "2025-03-03T21:30:00+08:00"))
    assert text.exit_code == 3
    assert "blocked" in text.output
    assert "CN-HRS" in text.output
    assert "next allowed: 2025-03-04T08:00:00+08:00" in text.output


def test_check_reports_bad_input_with_exit_1(cli_db: str) -> None:
    ids = _seed()
    naive = runner.invoke(cli, _check(ids, "2025-03-03T10:00:00"))
    assert naive.exit_code == 1
    assert "UTC offset" in naive.output
    channel = runner.invoke(
        cli,
        ["compliance", "check", "--institution", CODE, "--debtor", str(ids.debtor),
         "--channel", "pigeon", "--at", "2025-03-03T10:00:00+08:00"],
    )  # fmt: skip
    assert channel.exit_code == 1
    assert "--channel must be one of" in channel.output
    missing = runner.invoke(
        cli,
        ["compliance", "check", "--institution", CODE, "--debtor", "999999",
         "--channel", "sms", "--at", "2025-03-03T10:00:00+08:00"],
    )  # fmt: skip
    assert missing.exit_code == 1
    assert "no debtor 999999" in missing.output


def test_decisions_lists_what_check_stored(cli_db: str) -> None:
    ids = _seed()
    runner.invoke(cli, _check(ids, "2025-03-03T10:00:00+08:00"))
    runner.invoke(cli, _check(ids, "2025-03-03T22:00:00+08:00"))
    every = json.loads(
        runner.invoke(cli, ["compliance", "decisions", "--institution", CODE, "--json"]).stdout
    )
    assert every["total"] == 2
    assert [item["allowed"] for item in every["items"]] == [False, True]
    blocked = runner.invoke(
        cli,
        ["compliance", "decisions", "--institution", CODE, "--blocked", "--limit", "5",
         "--debtor", str(ids.debtor), "--json"],
    )  # fmt: skip
    assert blocked.exit_code == 0, blocked.output
    items = json.loads(blocked.stdout)["items"]
    assert len(items) == 1
    assert items[0]["rule_ids"] == ["CN-HRS"]
    assert items[0]["debtor_id"] == ids.debtor
    table = runner.invoke(cli, ["compliance", "decisions", "--institution", CODE])
    assert "2 of 2 decision(s)" in table.output


def test_review_exits_3_on_findings(cli_db: str, tmp_path: Path) -> None:
    threat = tmp_path / "threat.txt"
    threat.write_text("请尽快还款，否则后果自负！", encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text("{{ debtor_name }}您好，您的账单已到期，请及时还款。", encoding="utf-8")
    arguments = ["--locale", "zh_CN", "--audience", "debtor", "--channel", "sms", "--json"]
    found = runner.invoke(cli, ["compliance", "review", str(threat), *arguments])
    assert found.exit_code == 3, found.output
    result = json.loads(found.stdout)
    assert result["passed"] is False
    assert result["findings"][0]["rule_id"] == "CN-LANG"
    assert set(result["findings"][0]) == {
        "category", "rule_id", "start", "end", "text", "message", "message_zh",
    }  # fmt: skip
    passed = runner.invoke(cli, ["compliance", "review", str(clean), *arguments])
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout) == {"passed": True, "findings": []}
    missing = runner.invoke(cli, ["compliance", "review", str(tmp_path / "nope.txt"), *arguments])
    assert missing.exit_code == 1
    assert "no file" in missing.output


def test_review_applies_the_institutions_pack(cli_db: str, tmp_path: Path) -> None:
    _seed()
    sms = tmp_path / "sms.txt"
    sms.write_text("Hi, your payment is due tomorrow. Call us at 95555.", encoding="utf-8")
    arguments = ["--locale", "en", "--channel", "sms", "--json"]
    by_locale = runner.invoke(cli, ["compliance", "review", str(sms), *arguments])
    assert by_locale.exit_code == 3, by_locale.output
    assert json.loads(by_locale.stdout)["findings"][0]["rule_id"] == "US-MEDIUM"
    by_institution = runner.invoke(
        cli, ["compliance", "review", str(sms), *arguments, "--institution", CODE]
    )
    assert by_institution.exit_code == 0, by_institution.output
    unknown = runner.invoke(
        cli, ["compliance", "review", str(sms), *arguments, "--institution", "NOPE"]
    )
    assert unknown.exit_code == 1


def test_outcome_records_a_code_in_the_contact_log(cli_db: str) -> None:
    ids = _seed()
    allowed = runner.invoke(cli, _check(ids, "2025-03-03T10:00:00+08:00", "--json"))
    decision = json.loads(allowed.stdout)["decision_id"]
    recorded = runner.invoke(
        cli,
        [
            "compliance",
            "outcome",
            str(decision),
            "promise_made",
            "--institution",
            CODE,
            "--at",
            "2025-03-03T10:02:00+08:00",
            "--duration",
            "95",
        ],
    )
    assert recorded.exit_code == 0, recorded.output
    assert f"decision {decision}: made, promise_made" in recorded.output
    again = runner.invoke(
        cli,
        ["compliance", "outcome", str(decision), "no_answer", "--institution", CODE, "--at",
         "2025-03-03T10:02:00+08:00"],
    )  # fmt: skip
    assert again.exit_code == 1
    assert "already made" in again.output
