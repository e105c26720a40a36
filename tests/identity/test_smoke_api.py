from sqlalchemy.orm import Session

from tests.factories import make_institution
from tests.identity.helpers import PASSWORD, bearer, client_for, make_user


def test_token_and_me(session: Session) -> None:
    institution = make_institution(session)
    user = make_user(session, institution, role="manager")
    with client_for(session) as client:
        response = client.post(
            "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["role"] == "manager"
        assert client.get("/api/v1/debtors", headers=bearer(user)).status_code == 200
