"""The strategy API: create from a preset, check by line, save, activate, results, scoping."""

from __future__ import annotations

from sqlalchemy.orm import Session

from recoup.strategy.presets import preset_text
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.strategy.test_service import approve_preset_templates


def test_a_manager_copies_a_preset_checks_saves_and_activates_it(session: Session) -> None:
    institution = make_institution(session)
    approve_preset_templates(session, institution)
    manager = make_user(session, institution, role="manager")
    with client_for(session) as client:
        created = client.post(
            "/api/v1/strategies",
            json={"code": "cf", "name": "Consumer", "preset": "consumer_finance"},
            headers=bearer(manager),
        )
        assert created.status_code == 201, created.text
        strategy = created.json()
        assert strategy["latest"]["status"] == "draft"
        strategy_id = strategy["id"]

        broken = client.post(
            "/api/v1/strategies/check",
            json={"document": "name: x\nsegments:\n  - code: a\n    name: A\n    steps: []\n"},
            headers=bearer(manager),
        )
        assert broken.status_code == 200
        [problem] = broken.json()["problems"]
        assert problem["line"] == 5
        assert problem["field"] == "segments[0].steps"

        refused = client.put(
            f"/api/v1/strategies/{strategy_id}/draft",
            json={"document": "name: x\nsegments: 3\n"},
            headers=bearer(manager),
        )
        body = assert_problem(refused, 422)
        assert body["errors"][0]["line"] == 2

        edited = preset_text("consumer_finance").replace("grace_days: 3", "grace_days: 4")
        saved = client.put(
            f"/api/v1/strategies/{strategy_id}/draft",
            json={"document": edited, "note": "longer grace"},
            headers=bearer(manager),
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1

        check = client.post(
            "/api/v1/strategies/check", json={"document": edited}, headers=bearer(manager)
        ).json()
        assert check["can_activate"] is True
        assert {item["code"] for item in check["preview"]["segments"]} >= {"business", "standard"}

        activated = client.post(
            f"/api/v1/strategies/{strategy_id}/versions/1/activate", headers=bearer(manager)
        )
        assert activated.status_code == 200, activated.text
        assert activated.json()["status"] == "active"

        results = client.get(
            f"/api/v1/strategies/{strategy_id}/versions/1/experiments", headers=bearer(manager)
        )
        assert results.status_code == 200
        [experiment] = results.json()
        assert [arm["arm"] for arm in experiment["arms"]] == ["champion", "control", "email_first"]
        assert experiment["arms"][1]["significance"] == "no_data"


def test_activation_needs_a_manager_and_a_clean_document(session: Session) -> None:
    institution = make_institution(session)
    manager = make_user(session, institution, role="manager")
    lead = make_user(session, institution, role="team_lead")
    with client_for(session) as client:
        strategy_id = client.post(
            "/api/v1/strategies",
            json={"code": "cf", "name": "Consumer"},
            headers=bearer(manager),
        ).json()["id"]
        url = f"/api/v1/strategies/{strategy_id}/versions/1/activate"
        assert client.post(url, headers=bearer(lead)).status_code == 403
        # The preset's templates are not approved at this institution yet.
        body = assert_problem(client.post(url, headers=bearer(manager)), 422)
        assert {error["code"] for error in body["errors"]} == {"template_unknown"}


def test_another_institution_s_strategy_is_not_found(session: Session) -> None:
    mine, theirs = make_institution(session), make_institution(session)
    manager = make_user(session, mine, role="manager")
    stranger = make_user(session, theirs, role="manager")
    with client_for(session) as client:
        strategy_id = client.post(
            "/api/v1/strategies", json={"code": "cf", "name": "Mine"}, headers=bearer(manager)
        ).json()["id"]
        for method, url, body in (
            ("GET", f"/api/v1/strategies/{strategy_id}", None),
            ("GET", f"/api/v1/strategies/{strategy_id}/versions/1", None),
            (
                "PUT",
                f"/api/v1/strategies/{strategy_id}/draft",
                {"document": preset_text("consumer_finance")},
            ),
            ("POST", f"/api/v1/strategies/{strategy_id}/versions/1/activate", None),
        ):
            answer = client.request(method, url, json=body, headers=bearer(stranger))
            assert_problem(answer, 404)
        listed = client.get("/api/v1/strategies", headers=bearer(stranger)).json()
        assert listed["total"] == 0
