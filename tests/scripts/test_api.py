"""The script API and pages: the library, one script, a case's suggestion, the comparison, and
the script recorded with a contact."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models.compliance import TemplateStatus
from recoup.models.contact import ContactAttempt
from tests.identity.helpers import assert_problem, bearer, client_for, make_user, signed_in
from tests.scripts.helpers import script_world


def test_the_library_lists_approved_scripts_by_situation_and_language(session: Session) -> None:
    world = script_world(session)
    with client_for(session) as client:
        listed = client.get(
            "/api/v1/scripts?situation=hardship&locale=zh-CN", headers=bearer(world.agent)
        )
        assert listed.status_code == 200, listed.text
        [script] = listed.json()
        assert (script["situation"], script["locale"], script["status"]) == (
            "hardship",
            "zh-CN",
            "approved",
        )
        assert len(script["guidance"]) >= 3
        everything = client.get("/api/v1/scripts", headers=bearer(world.agent)).json()
        assert len(everything) == 18
        assert_problem(
            client.get("/api/v1/scripts?situation=chat", headers=bearer(world.agent)), 422
        )


def test_another_institutions_script_is_not_found(session: Session) -> None:
    world = script_world(session)
    other = script_world(session)
    theirs = other.script("first_contact").id
    with client_for(session) as client:
        mine = client.get(
            f"/api/v1/scripts/{world.script('first_contact').id}", headers=bearer(world.agent)
        )
        assert mine.status_code == 200, mine.text
        assert_problem(client.get(f"/api/v1/scripts/{theirs}", headers=bearer(world.agent)), 404)


def test_the_suggestion_for_a_case_and_who_may_ask(session: Session) -> None:
    world = script_world(session)
    colleague = make_user(session, world.institution, role="agent")
    url = f"/api/v1/scripts/suggestion?case_id={world.case.id}&locale=en-US"
    with client_for(session) as client:
        response = client.get(url, headers=bearer(world.agent))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["situation"], body["reason"]) == ("first_contact", "opening")
        assert body["script_id"] == world.script("first_contact", "en-US").id
        assert world.agent.username in body["text"]
        third = client.get(url + "&answered=third_party", headers=bearer(world.agent)).json()
        assert third["situation"] == "third_party"
        assert_problem(client.get(url, headers=bearer(colleague)), 404)
        assert_problem(client.get(url, headers=bearer(world.officer)), 403)
        assert_problem(client.get(url + "&answered=boss", headers=bearer(world.agent)), 422)


def test_a_contact_records_its_script_a_foreign_one_is_not_found_a_draft_is_refused(
    session: Session,
) -> None:
    world = script_world(session)
    other = script_world(session)
    script_id = world.script("first_contact").id
    payload = {
        "channel": "call",
        "started_at": datetime.now(UTC).isoformat(),
        "outcome": "right_party",
        "script_id": script_id,
    }
    url = f"/api/v1/debtors/{world.debtor.id}/contacts"
    with client_for(session) as client:
        created = client.post(url, json=payload, headers=bearer(world.manager))
        assert created.status_code == 201, created.text
        assert created.json()["script_id"] == script_id
        foreign = {**payload, "script_id": other.script("first_contact").id}
        problem = assert_problem(client.post(url, json=foreign, headers=bearer(world.manager)), 404)
        assert "script_id" in str(problem["detail"])
        world.script("dispute").status = TemplateStatus.rejected
        session.flush()
        rejected = {**payload, "script_id": world.script("dispute").id}
        problem = assert_problem(
            client.post(url, json=rejected, headers=bearer(world.manager)), 422
        )
        assert "script_id" in str(problem["detail"])
        listed = client.get(url, headers=bearer(world.manager)).json()
        assert [item["script_id"] for item in listed["items"]] == [script_id]
    stored = session.execute(
        select(ContactAttempt.script_id).where(ContactAttempt.debtor_id == world.debtor.id)
    ).scalars()
    assert list(stored) == [script_id]


def test_the_comparison_counts_the_contacts_made_with_each_script(session: Session) -> None:
    world = script_world(session)
    script_id = world.script("first_contact").id
    with client_for(session) as client:
        client.post(
            f"/api/v1/debtors/{world.debtor.id}/contacts",
            json={
                "channel": "call",
                "started_at": datetime.now(UTC).isoformat(),
                "outcome": "promise_made",
                "script_id": script_id,
            },
            headers=bearer(world.manager),
        )
        response = client.get("/api/v1/scripts/performance", headers=bearer(world.manager))
        assert response.status_code == 200, response.text
        rows = {row["script_id"]: row for row in response.json()}
        assert (rows[script_id]["attempts"], rows[script_id]["promise_rate"]) == (1, 1.0)
        bad = client.get(
            "/api/v1/scripts/performance?since=2026-03-02&until=2026-03-01",
            headers=bearer(world.manager),
        )
        assert "until" in str(assert_problem(bad, 422)["detail"])


def test_a_script_is_drafted_through_the_template_api(session: Session) -> None:
    world = script_world(session)
    body = {
        "name": "Dispute, short",
        "channel": "call",
        "locale": "en-US",
        "audience": "debtor",
        "kind": "script",
        "situation": "dispute",
        "guidance": "Listen\nRecord the dispute",
        "body": "{{ debtor_name }}, I will record your dispute.",
    }
    with client_for(session) as client:
        created = client.post("/api/v1/templates", json=body, headers=bearer(world.manager))
        assert created.status_code == 201, created.text
        assert (created.json()["situation"], created.json()["guidance"]) == (
            "dispute",
            "Listen\nRecord the dispute",
        )
        unguided = {**body, "guidance": None}
        problem = assert_problem(
            client.post("/api/v1/templates", json=unguided, headers=bearer(world.manager)), 422
        )
        assert "guidance" in str(problem["detail"])


def test_the_library_page_in_both_languages(session: Session) -> None:
    world = script_world(session)
    with client_for(session) as client:
        signed_in(client, world.agent)
        chinese = client.get("/scripts?locale=zh-CN")
        assert chinese.status_code == 200, chinese.text
        assert "他人接听" in chinese.text
        assert "不透露来电原因" in chinese.text
        english = client.get("/scripts?locale=en-US")
        assert "Someone else answers" in english.text
        assert 'data-testid="script-performance"' in english.text


def test_the_script_editor_opens_for_a_situation(session: Session) -> None:
    world = script_world(session)
    with client_for(session) as client:
        signed_in(client, world.manager)
        page = client.get("/compliance/templates/new?kind=script&situation=third_party")
        assert page.status_code == 200, page.text
        assert 'name="guidance"' in page.text
        assert 'value="third_party" selected' in page.text
        detail = client.get(f"/compliance/templates/{world.script('hardship').id}")
        assert 'data-testid="script-guidance"' in detail.text


def test_the_case_script_panel_follows_who_answered(session: Session) -> None:
    world = script_world(session)
    colleague = make_user(session, world.institution, role="agent")
    url = f"/cases/{world.case.id}/script?"
    with client_for(session) as client:
        signed_in(client, world.agent)
        panel = client.get(url + "locale=zh-CN")
        assert panel.status_code == 200, panel.text
        assert 'data-situation="first_contact"' in panel.text
        assert "张*" in panel.text
        assert f'<option value="{world.script("first_contact").id}" selected' in panel.text
        third = client.get(url + "answered=third_party&locale=zh-CN")
        assert 'data-situation="third_party"' in third.text
        assert "只说自己的姓名" in third.text
        signed_in(client, colleague)
        assert client.get(url).status_code == 404
