from sqlalchemy.orm import Session
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

from recoup.audit import service as audit


def test_auditors_browse_and_filter_their_institutions_trail(session: Session) -> None:
    mine, theirs = make_institution(session), make_institution(session)
    auditor = make_user(session, mine, role="auditor")
    audit.record(
        session,
        actor="alice",
        action="payment.record",
        object_type="payment",
        object_id=1,
        institution_id=mine.id,
    )
    audit.record(
        session,
        actor="bob",
        action="payment.record",
        object_type="payment",
        object_id=2,
        institution_id=mine.id,
    )
    audit.record(
        session,
        actor="eve",
        action="payment.record",
        object_type="payment",
        object_id=3,
        institution_id=theirs.id,
    )
    with client_for(session) as client:
        everything = client.get(
            "/api/v1/audit?action=payment.record", headers=bearer(auditor)
        ).json()
        assert [item["actor"] for item in everything["items"]] == ["bob", "alice"]
        alice = client.get(
            "/api/v1/audit", params={"actor": "alice"}, headers=bearer(auditor)
        ).json()
        assert alice["total"] == 1
        future = client.get(
            "/api/v1/audit", params={"since": "2999-01-01T00:00:00+08:00"}, headers=bearer(auditor)
        ).json()
        assert future["total"] == 0
        paged = client.get("/api/v1/audit?size=1&page=2", headers=bearer(auditor)).json()
        assert paged["size"] == 1
        assert len(paged["items"]) == 1
        assert_problem(
            client.get(
                "/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=bearer(auditor)
            ),
            422,
        )
        assert_problem(
            client.get("/api/v1/audit", params={"since": "yesterday"}, headers=bearer(auditor)), 422
        )
        assert_problem(
            client.get("/api/v1/audit", headers=bearer(make_user(session, mine, role="agent"))), 403
        )


def test_sign_ins_are_in_the_trail(session: Session) -> None:
    institution = make_institution(session)
    admin = make_user(session, institution, role="admin")
    with client_for(session) as client:
        client.post(
            "/api/v1/auth/token", data={"username": admin.username, "password": "wrong-Password-1"}
        )
        trail = client.get(
            "/api/v1/audit", params={"actor": admin.username}, headers=bearer(admin)
        ).json()
    actions = [item["action"] for item in trail["items"]]
    assert "auth.login_failed" in actions
    failed = next(item for item in trail["items"] if item["action"] == "auth.login_failed")
    assert failed["details"]["reason"] == "wrong password"
    assert "wrong-Password-1" not in str(trail)
