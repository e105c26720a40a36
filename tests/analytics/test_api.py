"""``GET /api/v1/kpis``: the shape, refusals naming the field, roles, and tenant scoping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from recoup.analytics import rules, schemas, service
from recoup.analytics.api import _report_json
from recoup.identity import service as identity
from recoup.portfolio.rules import BUCKETS
from tests.analytics.conftest import March
from tests.analytics.helpers import PRICING, few, group_facts
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

URL = "/api/v1/kpis"


class TestAnswer:
    def test_the_answer_is_what_the_schema_describes(self, session: Session, march: March) -> None:
        # Written from plain values: read back as ``schemas.KpiReport`` (the OpenAPI document)
        # and written out again, it is the same text, field for field and in the same order.
        manager = make_user(session, march.institution, role="manager")
        with client_for(session) as client:
            for group_by in ("", "product,bucket,province,channel", "city,segment"):
                response = client.get(
                    URL,
                    params={"as_of": "2026-03-31", "group_by": group_by},
                    headers=bearer(manager),
                )
                assert response.status_code == 200, response.text
                read = schemas.KpiReport.model_validate_json(response.content)
                assert read.model_dump_json(by_alias=True).encode() == response.content
                assert read.groups or not group_by

    def test_the_month_in_total_and_by_product(self, session: Session, march: March) -> None:
        manager = make_user(session, march.institution, role="manager")
        with client_for(session) as client:
            response = client.get(
                URL, params={"as_of": "2026-03-31", "group_by": "product"}, headers=bearer(manager)
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["institution"] == march.institution.code
        assert body["currency"] == "CNY"
        assert body["period"] == {"from": "2026-03-01", "to": "2026-03-31"}
        assert body["group_by"] == ["product"]
        total = body["total"]
        assert total["portfolio"]["accounts"] == 4
        assert total["portfolio"]["balance"] == 59_000
        assert total["recovery_rate"] == {
            "numerator": 13_000,
            "denominator": 36_000,
            "value": 13_000 / 36_000,
        }
        assert total["liquidation_rate"]["value"] == 0.1
        assert total["collected"] == {"amount": 21_000, "payments": 6, "after_charge_off": 4_000}
        assert total["promise_kept_rate"] == {"numerator": 1, "denominator": 2, "value": 0.5}
        assert total["promise_forecast"]["expected"] == 1_000
        m5 = next(row for row in total["roll_rates"]["from_buckets"] if row["from_bucket"] == "M5")
        assert m5["by_count"]["cure"] == {"numerator": 0, "denominator": 0, "value": None}
        # The call about F's debtor as a whole has no account, so no product.
        assert [group["cuts"] for group in body["groups"]] == [
            {"product": "consumer_loan"},
            {"product": "credit_card"},
            {"product": None},
        ]
        assert body["kept_probability"]["overall"]["denominator"] == 3
        assert total["contacts"] == {
            "attempts": 5,
            "reached": 3,
            "right_party": 2,
            "promises": 2,
            "by_channel": {"call": 4, "sms": 1},
        }
        assert total["contact_rate"]["value"] == 0.6
        assert total["right_party_contact_rate"]["value"] == 0.4
        assert total["promise_rate"]["value"] == 1.0
        assert total["contact_cost"] == 605  # 4 calls × ¥1.50 + 1 text × ¥0.05
        assert total["cost_per_amount_collected"] == {
            "numerator": 605,
            "denominator": 21_000,
            "value": 605 / 21_000,
        }

    def test_a_past_period_and_comma_separated_cuts(self, session: Session, march: March) -> None:
        lead = make_user(session, march.institution, role="team_lead")
        with client_for(session) as client:
            response = client.get(
                URL,
                params={
                    "as_of": "2026-03-31",
                    "from": "2026-02-01",
                    "to": "2026-02-28",
                    "group_by": "province,bucket",
                },
                headers=bearer(lead),
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["period"] == {"from": "2026-02-01", "to": "2026-02-28"}
        assert body["group_by"] == ["province", "bucket"]
        assert body["total"]["promises_due"]["broken"] == 1
        assert all(set(group["cuts"]) == {"province", "bucket"} for group in body["groups"])


class TestRefusals:
    def test_from_after_to_names_from(self, session: Session, march: March) -> None:
        manager = make_user(session, march.institution, role="manager")
        with client_for(session) as client:
            response = client.get(
                URL,
                params={"as_of": "2026-03-31", "from": "2026-03-20", "to": "2026-03-10"},
                headers=bearer(manager),
            )
        problem = assert_problem(response, 422)
        assert problem["errors"] == [
            {
                "field": "from",
                "message": "from 2026-03-20 is after to 2026-03-10: "
                "give a start on or before the end",
            }
        ]

    def test_an_unknown_cut_lists_the_allowed_ones(self, session: Session, march: March) -> None:
        manager = make_user(session, march.institution, role="manager")
        with client_for(session) as client:
            response = client.get(
                URL, params={"as_of": "2026-03-31", "group_by": "agent"}, headers=bearer(manager)
            )
        problem = assert_problem(response, 422)
        assert "product, bucket, province, city, segment, channel" in str(problem["detail"])
        assert [item["field"] for item in problem["errors"]] == ["group_by"]  # type: ignore[union-attr]

    def test_a_missing_or_impossible_date(self, session: Session, march: March) -> None:
        manager = make_user(session, march.institution, role="manager")
        with client_for(session) as client:
            assert_problem(client.get(URL, headers=bearer(manager)), 422)
            assert_problem(
                client.get(URL, params={"as_of": "2026-02-30"}, headers=bearer(manager)), 422
            )
            assert_problem(
                client.get(URL, params={"as_of": "9999-12-31"}, headers=bearer(manager)), 422
            )


class TestWhoMaySee:
    def test_roles_holding_kpis_read_and_those_that_do_not(
        self, session: Session, march: March
    ) -> None:
        with client_for(session) as client:
            for role, status in [
                ("admin", 200),
                ("manager", 200),
                ("team_lead", 200),
                ("data_scientist", 200),
                ("auditor", 200),
                ("agent", 403),
                ("compliance_officer", 403),
            ]:
                user = make_user(session, march.institution, role=role)
                response = client.get(URL, params={"as_of": "2026-03-31"}, headers=bearer(user))
                assert response.status_code == status, (role, response.text)
            assert client.get(URL, params={"as_of": "2026-03-31"}).status_code == 401

    def test_an_api_key_with_the_kpis_scope(self, session: Session, march: March) -> None:
        key, _ = identity.create_api_key(
            session,
            institution_id=march.institution.id,
            name="dashboard",
            scopes=["kpis:read"],
            actor="test",
        )
        with client_for(session) as client:
            response = client.get(
                URL, params={"as_of": "2026-03-31"}, headers={"Authorization": f"Bearer {key}"}
            )
        assert response.status_code == 200, response.text
        assert response.json()["total"]["portfolio"]["accounts"] == 4

    def test_another_institutions_data_never_counts(self, session: Session, march: March) -> None:
        other = march.other
        outsider = make_user(session, other, role="manager")
        with client_for(session) as client:
            mine = client.get(
                URL,
                params={"as_of": "2026-03-31"},
                headers=bearer(make_user(session, march.institution, role="manager")),
            ).json()
            theirs = client.get(
                URL, params={"as_of": "2026-03-31"}, headers=bearer(outsider)
            ).json()
        assert mine["total"]["collected"]["amount"] == 21_000
        assert theirs["institution"] == other.code
        assert theirs["total"]["portfolio"]["accounts"] == 1
        assert theirs["total"]["collected"]["amount"] == 7_000
        assert theirs["total"]["cure_rate"]["by_count"]["value"] == 1.0
        assert theirs["total"]["contacts"]["attempts"] == 1
        assert mine["total"]["contacts"]["attempts"] == 5

    def test_a_platform_admin_reads_no_institution(self, session: Session, march: March) -> None:
        platform = make_user(session, None, role="admin")
        with client_for(session) as client:
            response = client.get(URL, params={"as_of": "2026-03-31"}, headers=bearer(platform))
        assert_problem(response, 404)


# --- The answer's text against the straightforward formulas. --------------------------------
#
# The API writes each group's KPIs as text straight from its facts. The reference: every KPI
# computed by ``rules.kpis_of`` per group, as plain values in the schema's shape, written by
# ``json.dumps``.


def _rate_plain(rate: rules.Rate) -> dict[str, Any]:
    return {"numerator": rate.numerator, "denominator": rate.denominator, "value": rate.value}


def _cohort_plain(cohort: rules.Cohort) -> dict[str, int]:
    return {"accounts": cohort.accounts, "balance": cohort.balance, "collected": cohort.collected}


def _moves_plain(shares: Mapping[rules.Move, rules.Rate]) -> dict[str, Any]:
    return {move: _rate_plain(rate) for move, rate in shares.items()}


def _kpis_plain(kpis: rules.Kpis) -> dict[str, Any]:
    forecast = kpis.promise_forecast
    contacts = kpis.contacts
    cost = kpis.cost_per_amount_collected
    return {
        "portfolio": {
            "accounts": kpis.accounts,
            "balance": kpis.balance,
            "buckets": [
                {"bucket": item.bucket, "accounts": item.accounts, "balance": item.balance}
                for item in kpis.buckets
            ],
        },
        "roll_rates": {
            "from_buckets": [
                {
                    "from_bucket": summary.from_bucket,
                    "accounts": summary.accounts,
                    "balance": summary.balance,
                    "by_count": _moves_plain(summary.by_count),
                    "by_balance": _moves_plain(summary.by_balance),
                }
                for summary in kpis.roll_rates
            ],
            "cells": [
                {
                    "from_bucket": cell.from_bucket,
                    "to_state": cell.to_bucket,
                    "accounts": cell.accounts,
                    "balance": cell.balance,
                }
                for cell in kpis.transitions
            ],
        },
        "cure_rate": {
            "by_count": _rate_plain(kpis.cure_rate_by_count),
            "by_balance": _rate_plain(kpis.cure_rate_by_balance),
        },
        "collected": {
            "amount": kpis.collected.amount,
            "payments": kpis.collected.payments,
            "after_charge_off": kpis.collected.after_charge_off,
        },
        "delinquent_at_start": _cohort_plain(kpis.delinquent_at_start),
        "recovery_rate": _rate_plain(kpis.recovery_rate),
        "placed": _cohort_plain(kpis.placed),
        "liquidation_rate": _rate_plain(kpis.liquidation_rate),
        "average_days_to_cure": {
            "total": kpis.average_days_to_cure.total,
            "count": kpis.average_days_to_cure.count,
            "value": kpis.average_days_to_cure.value,
        },
        "promises_due": {
            "kept": kpis.promises_due.kept,
            "partially_kept": kpis.promises_due.partially_kept,
            "broken": kpis.promises_due.broken,
            "awaiting": kpis.promises_due.awaiting,
        },
        "promise_kept_rate": _rate_plain(kpis.promise_kept_rate),
        "promise_partially_kept_rate": _rate_plain(kpis.promise_partially_kept_rate),
        "promise_forecast": {
            "promises": forecast.promises,
            "amount": forecast.amount,
            "expected": forecast.expected,
            "lines": [
                {
                    "bucket": line.bucket,
                    "promises": line.promises,
                    "amount": line.amount,
                    "probability": _rate_plain(line.probability),
                    "source": line.source,
                    "expected": line.expected,
                }
                for line in forecast.lines
            ],
        },
        "plans_ended": {
            "completed": kpis.plans_ended.completed,
            "broken": kpis.plans_ended.broken,
        },
        "plan_kept_rate": _rate_plain(kpis.plan_kept_rate),
        "contacts": {
            "attempts": contacts.attempts,
            "reached": contacts.reached,
            "right_party": contacts.right_party,
            "promises": contacts.promises,
            "by_channel": dict(sorted(contacts.by_channel.items())),
        },
        "contact_rate": _rate_plain(kpis.contact_rate),
        "right_party_contact_rate": _rate_plain(kpis.right_party_contact_rate),
        "promise_rate": _rate_plain(kpis.promise_rate),
        "contact_cost": kpis.contact_cost,
        "cost_per_amount_collected": None if cost is None else _rate_plain(cost),
    }


def _period_plain(period: rules.Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _report_text(report: service.KpiReport) -> str:
    """The answer as the straightforward formulas give it: ``kpis_of`` per group, written out."""
    probability = report.kept_probability
    plain = {
        "institution": report.institution,
        "currency": report.currency,
        "as_of": report.as_of.isoformat(),
        "period": _period_plain(report.period),
        "group_by": list(report.group_by),
        "total": _kpis_plain(report.total),
        "groups": [
            {"cuts": group.cuts, "kpis": _kpis_plain(group.kpis)} for group in report.groups
        ],
        "kept_probability": {
            "history": _period_plain(report.kept_history),
            "overall": _rate_plain(probability.overall),
            "by_bucket": {
                bucket: _rate_plain(rate) for bucket, rate in probability.by_bucket.items()
            },
            "min_promises_per_bucket": probability.minimum,
        },
    }
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))


def _report(
    groups: list[tuple[dict[str, str | None], rules.GroupFacts]],
    probability: rules.KeptProbability,
    group_by: tuple[str, ...],
) -> service.KpiReport:
    return service.KpiReport(
        institution="BANK",
        currency="CNY",
        as_of=date(2026, 3, 31),
        period=rules.Period(date(2026, 3, 1), date(2026, 3, 31)),
        group_by=group_by,
        total_facts=rules.total_of(facts for _, facts in groups),
        group_facts=groups,
        kept_probability=probability,
        kept_history=rules.Period(date(2026, 1, 1), date(2026, 3, 31)),
        pricing=PRICING,
    )


class TestTheTextIsTheFormulasWrittenOut:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        facts=st.lists(group_facts(), max_size=12),
        cut_values=st.lists(
            st.sampled_from((None, "广东省", "credit_card", "M1", 'a"\\b\x00')),
            min_size=12,
            max_size=12,
        ),
        history=st.dictionaries(
            st.sampled_from((*BUCKETS, None)),
            st.builds(rules.PromiseOutcomes, few, few, few, few),
            max_size=4,
        ),
        minimum=st.integers(0, 4),
    )
    def test_random_groups(
        self,
        facts: list[rules.GroupFacts],
        cut_values: list[str | None],
        history: dict[str | None, rules.PromiseOutcomes],
        minimum: int,
    ) -> None:
        probability = rules.kept_probability(history, minimum=minimum)
        groups = [
            ({"province": value, "channel": f"c{position}"}, item)
            for position, (value, item) in enumerate(zip(cut_values, facts, strict=False))
        ]
        report = _report(groups, probability, ("province", "channel"))
        assert _report_json(report) == _report_text(report)

    def test_an_answer_without_groups_and_groups_without_facts(self) -> None:
        probability = rules.kept_probability({}, minimum=30)
        for report in (
            _report([], probability, ()),
            _report([({"bucket": None}, rules.GroupFacts())], probability, ("bucket",)),
        ):
            text = _report_json(report)
            assert text == _report_text(report)
            assert schemas.KpiReport.model_validate_json(text)

    def test_an_unknown_bucket_is_refused_as_the_formulas_refuse_it(self) -> None:
        probability = rules.kept_probability({}, minimum=30)
        for facts in (
            rules.GroupFacts(buckets=(rules.BucketCount("M9", 1, 1),)),
            rules.GroupFacts(transitions=(rules.Cell("M9", "M0", 1, 1),)),
        ):
            report = _report([({"bucket": "M9"}, facts)], probability, ("bucket",))
            with pytest.raises((KeyError, ValueError)) as refused:
                _report_text(report)
            with pytest.raises(refused.type):
                _report_json(report)
