"""The CN-LOCAL pack, added as data only: China's rules plus no collection calls after 21:00."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import recoup.compliance
from recoup.cli import app as cli
from recoup.compliance.kinds import RuleKind
from recoup.compliance.policy.rules import ChannelHours, Policy, preset_policy, validate_policy
from recoup.compliance.rulepack import PACK_CODES, load_pack
from recoup.contact.channels import Channel
from recoup.models import Institution
from tests.compliance.gate.checks import check
from tests.compliance.gate.gate_helpers import SHANGHAI, at, decide, planned
from tests.factories import make_debtor, make_institution
from tests.identity.helpers import client_for, make_user, signed_in

REGIONAL = load_pack("CN-LOCAL")
(LOCAL_HOURS,) = (
    rule.id
    for rule in REGIONAL.rules_of(RuleKind.CONTACT_HOURS)
    if not load_pack("CN").has(rule.id)
)
CONSUMER = preset_policy("consumer_finance", pack=REGIONAL)
BANK = preset_policy("commercial_bank", pack=REGIONAL)
NOW = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


class TestDecisions:
    @pytest.mark.parametrize("policy", [CONSUMER, BANK], ids=["consumer_finance", "bank"])
    def test_a_call_at_half_past_nine_is_refused_citing_the_local_rule(
        self, policy: Policy
    ) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 21, 30)), pack=REGIONAL, policy=policy)
        assert not decision.allowed
        assert decision.rule_ids[0] == LOCAL_HOURS
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)
        assert "21:00" in decision.reasons[0].message_en

    def test_the_national_pack_still_allows_that_call(self) -> None:
        national = load_pack("CN")
        bank = preset_policy("commercial_bank", pack=national)
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 21, 30)), pack=national, policy=bank).allowed

    def test_a_text_message_keeps_the_national_hours(self) -> None:
        sms = planned(at(SHANGHAI, 2025, 3, 3, 21, 30), Channel.SMS)
        assert decide(sms, pack=REGIONAL, policy=BANK).allowed

    def test_an_evening_call_before_nine_is_allowed(self) -> None:
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 20, 59)), pack=REGIONAL, policy=BANK).allowed

    def test_after_ten_the_national_rule_is_the_one_cited(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 22, 30)), pack=REGIONAL, policy=BANK)
        assert decision.rule_ids[0] == "CN-HRS"

    def test_an_agreement_with_the_debtor_cannot_open_the_local_quiet_hours(self) -> None:
        violations = validate_policy(Policy(honour_agreed_windows=True), REGIONAL)
        assert [(v.rule_id, v.field) for v in violations] == [
            (LOCAL_HOURS, "honour_agreed_windows")
        ]
        assert validate_policy(Policy(honour_agreed_windows=True), load_pack("CN")) == []

    def test_a_policy_cannot_call_later_than_the_local_rule(self) -> None:
        late = ChannelHours(channels=frozenset({Channel.CALL}), start=time(9), end=time(21, 30))
        policy = Policy(honour_agreed_windows=False, hours=(late,))
        assert [v.rule_id for v in validate_policy(policy, REGIONAL)] == [LOCAL_HOURS]


class TestAddedAsData:
    def test_the_gate_policy_and_pages_name_no_rule_id_of_any_pack(self) -> None:
        package = Path(recoup.compliance.__file__).parent
        sources = [
            *sorted((package / "gate").glob("*.py")),
            package / "policy" / "rules.py",
            package / "policy" / "service.py",
            package / "facts" / "rules.py",
            package / "views.py",
        ]
        ids = {rule.id for code in PACK_CODES for rule in load_pack(code).rules}
        for source in sources:
            text = source.read_text(encoding="utf-8")
            named = sorted(rule_id for rule_id in ids if f'"{rule_id}"' in text)
            assert not named, f"{source.name} names {named}"

    def test_the_pack_is_one_data_file(self) -> None:
        package = Path(recoup.compliance.__file__).parent
        raw = json.loads((package / "packs" / "cn-local.json").read_text(encoding="utf-8"))
        assert raw["extends"] == "CN"
        assert [rule["id"] for rule in raw["rules"]] == [LOCAL_HOURS]


class TestForAnInstitution:
    def _institution(self, session: Session) -> Institution:
        return make_institution(session, jurisdiction="CN-LOCAL")

    def test_the_stored_gate_refuses_the_late_call_and_logs_the_rule(
        self, session: Session
    ) -> None:
        institution = self._institution(session)
        debtor = make_debtor(session, institution)
        checked = check(session, debtor, at(SHANGHAI, 2025, 3, 3, 21, 30))
        assert not checked.decision.allowed
        assert checked.record.rule_ids == [LOCAL_HOURS]
        assert checked.record.pack_code == "CN-LOCAL"
        morning = check(session, debtor, at(SHANGHAI, 2025, 3, 4, 10, 0))
        assert morning.decision.allowed

    def test_the_rule_page_shows_the_local_rule(self, session: Session) -> None:
        institution = self._institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            signed_in(client, officer)
            page = client.get("/compliance")
        assert page.status_code == 200, page.text
        assert LOCAL_HOURS in page.text
        assert "CN-LOCAL" in page.text
        assert "CN-HRS" in page.text


def test_an_institution_is_created_with_the_pack_and_the_cli_lists_it(cli_db: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        cli,
        [
            *("institutions", "create", "LOCAL1", "--name", "Local Lender"),
            *("--jurisdiction", "CN-LOCAL", "--timezone", "Asia/Shanghai", "--currency", "CNY"),
            *("--preset", "consumer_finance"),
        ],
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(cli, ["compliance", "rules", "--pack", "cn-local", "--json"])
    assert listed.exit_code == 0, listed.output
    (pack,) = json.loads(listed.stdout)
    rules = {rule["id"]: rule for rule in pack["rules"]}
    assert rules[LOCAL_HOURS]["kind"] == "contact_hours"
    assert rules[LOCAL_HOURS]["parameters"]["end"] == "21:00"
    assert rules["POL-CAP"]["source"] == "policy"
