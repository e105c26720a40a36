"""``GET /api/v1/kpis``: the shape, refusals naming the field, roles, and tenant scoping."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.orm import Session

from recoup.analytics import rules, schemas, service
from recoup.analytics.api import _report_json, _report_plain
from recoup.identity import service as identity
from tests.analytics.conftest import March
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


def test_the_text_is_the_plain_values_written_out_even_with_a_nul_in_a_cut() -> None:
    # A bucket no account started in is written once and put in place of a marker string; a
    # cut holding a NUL character (as the marker does) is written plainly, to the same text.
    probability = rules.kept_probability({}, minimum=30)
    pricing = rules.Pricing(costs={}, minor_digits=2)
    cells = (rules.Cell("M1", "M0", 1, 100),)
    for province in ("广东省", "\x00empty-bucket:M2\x00"):
        report = service.KpiReport(
            institution="BANK",
            currency="CNY",
            as_of=date(2026, 3, 31),
            period=rules.Period(date(2026, 3, 1), date(2026, 3, 31)),
            group_by=("province",),
            total=rules.kpis_of(rules.GroupFacts(transitions=cells), probability, pricing),
            groups=[
                service.KpiGroup(
                    cuts={"province": province},
                    kpis=rules.kpis_of(rules.GroupFacts(), probability, pricing),
                )
            ],
            kept_probability=probability,
            kept_history=rules.Period(date(2026, 1, 1), date(2026, 3, 31)),
        )
        plain = json.dumps(_report_plain(report), ensure_ascii=False, separators=(",", ":"))
        assert _report_json(report) == plain
        assert json.loads(plain)["groups"][0]["cuts"]["province"] == province
