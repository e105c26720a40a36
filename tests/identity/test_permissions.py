import re
from pathlib import Path

import pytest

from recoup.identity.dependencies import authorize, require_page
from recoup.identity.permissions import (
    API_KEY_SCOPES,
    MATRIX,
    ROLES,
    UnknownPermission,
    is_public_path,
    matrix_markdown,
    permissions_of_role,
    permissions_of_scopes,
    require_known,
    role_holds,
    scope_problems,
)
from recoup.models import Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


class TestMatrix:
    def test_roles_match_the_model(self) -> None:
        assert set(ROLES) == {role.value for role in Role}

    def test_every_grant_names_known_roles(self) -> None:
        for name, grant in MATRIX.items():
            assert re.fullmatch(r"[a-z_]+:[a-z_]+", name)
            assert grant.roles <= set(ROLES), name

    def test_the_documented_table_is_the_code(self) -> None:
        text = DOC.read_text()
        documented = text.split("<!-- matrix:start -->")[1].split("<!-- matrix:end -->")[0].strip()
        assert documented == matrix_markdown(), "regenerate the table in docs/security.md"

    def test_separation_of_duties(self) -> None:
        assert not role_holds("auditor", "pii:reveal")
        assert not role_holds("admin", "pii:reveal")
        assert not role_holds("agent", "users:manage")
        assert role_holds("auditor", "audit:read")
        assert "templates:approve" in permissions_of_role("compliance_officer")
        assert "templates:approve" not in permissions_of_role("manager")
        assert not role_holds("data_scientist", "debtors:read")

    def test_every_role_can_see_its_own_profile(self) -> None:
        for role in ROLES:
            assert "profile:read" in permissions_of_role(role)


class TestScopes:
    def test_api_keys_get_only_api_scopes(self) -> None:
        assert permissions_of_scopes(["payments:write", "users:manage", "nonsense"]) == {
            "payments:write"
        }
        assert {"payments:write", "contacts:write", "accounts:read"} <= API_KEY_SCOPES

    def test_problems_name_the_scope(self) -> None:
        assert scope_problems(["payments:write"]) == []
        problems = scope_problems(["users:manage", "bogus:x"])
        assert "scope 'users:manage' cannot be given to an API key" in problems
        assert "unknown scope 'bogus:x'" in problems


class TestDeclarations:
    def test_unknown_permission_is_refused_when_the_route_is_defined(self) -> None:
        with pytest.raises(UnknownPermission, match="debtor:read"):
            authorize("debtor:read")
        with pytest.raises(UnknownPermission):
            require_page("nope")
        assert require_known("debtors:read") == "debtors:read"

    @pytest.mark.parametrize(
        ("path", "public"),
        [
            ("/healthz", True),
            ("/static", True),
            ("/static/app.css", True),
            ("/login", True),
            ("/api/v1/auth/token", True),
            ("/api/v1/debtors", False),
            ("/staticky", False),
            ("/", False),
        ],
    )
    def test_public_paths(self, path: str, public: bool) -> None:
        assert is_public_path(path) is public
