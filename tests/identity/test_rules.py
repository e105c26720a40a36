import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.identity.rules import (
    MIN_PASSWORD_LENGTH,
    LockoutPolicy,
    TokenRejected,
    access_claims,
    check_access_claims,
    lockout,
    password_problems,
    secret_problem,
    username_problem,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class TestPasswordPolicy:
    def test_a_good_password_passes(self) -> None:
        assert password_problems("Correct-horse-42", username="alice") == []

    def test_too_short_says_how_long(self) -> None:
        assert password_problems("Ab1-", username="alice") == [
            "the password must be at least 12 characters long (it has 4)"
        ]

    def test_not_the_username(self) -> None:
        problems = password_problems("Alice.Manager1", username="alice.manager1")
        assert "the password cannot be the username" in problems

    def test_not_all_one_class(self) -> None:
        problems = password_problems("abcdefghijklmn", username="bob")
        assert problems == [
            "the password cannot be all one kind of character: mix letters, digits or symbols"
        ]
        assert password_problems("123456789012", username="bob") != []

    def test_not_a_repeated_character(self) -> None:
        assert "the password cannot repeat one or two characters" in password_problems(
            "abababababab", username="bob"
        ) + password_problems("a1a1a1a1a1a1", username="bob")

    @given(st.text(min_size=0, max_size=MIN_PASSWORD_LENGTH - 1))
    def test_short_passwords_always_fail(self, password: str) -> None:
        assert password_problems(password, username="someone") != []

    @given(st.text(alphabet=st.characters(categories=["Ll"]), min_size=12, max_size=40))
    def test_lowercase_only_always_fails(self, password: str) -> None:
        assert password_problems(password, username="someone") != []

    def test_usernames(self) -> None:
        assert username_problem("alice.w@bank") is None
        assert username_problem("x") is not None
        assert username_problem("'; drop table users; --") is not None


class TestLockout:
    policy = LockoutPolicy(
        user_failures=3, ip_failures=5, window=timedelta(minutes=10), lock_for=timedelta(minutes=15)
    )

    def _ago(self, *minutes: float) -> list[datetime]:
        return [NOW - timedelta(minutes=m) for m in minutes]

    def test_below_the_threshold_is_open(self) -> None:
        decision = lockout(
            user_failures=self._ago(1, 2), ip_failures=self._ago(1, 2), now=NOW, policy=self.policy
        )
        assert not decision.locked

    def test_threshold_in_window_locks_the_user_until_last_failure_plus_lock(self) -> None:
        decision = lockout(
            user_failures=self._ago(1, 2, 3), ip_failures=[], now=NOW, policy=self.policy
        )
        assert decision.locked
        assert decision.scope == "user"
        assert decision.until == NOW - timedelta(minutes=1) + timedelta(minutes=15)
        assert "this account" in decision.message
        assert decision.retry_after_seconds(NOW) == 14 * 60
        assert decision.retry_after_seconds(NOW + timedelta(minutes=14, seconds=59.5)) == 1

    def test_the_rate_limit_says_retry_in_a_minute(self) -> None:
        decision = lockout(
            user_failures=[],
            ip_failures=[],
            now=NOW,
            policy=self.policy,
            ip_attempts_last_minute=self.policy.ip_attempts_per_minute,
        )
        assert decision.scope == "rate"
        assert decision.retry_after_seconds(NOW) == 60

    def test_failures_spread_wider_than_the_window_do_not_lock(self) -> None:
        decision = lockout(
            user_failures=self._ago(1, 8, 16), ip_failures=[], now=NOW, policy=self.policy
        )
        assert not decision.locked

    def test_lock_expires(self) -> None:
        decision = lockout(
            user_failures=self._ago(16, 17, 18), ip_failures=[], now=NOW, policy=self.policy
        )
        assert not decision.locked

    def test_the_address_locks_separately(self) -> None:
        decision = lockout(
            user_failures=[], ip_failures=self._ago(1, 2, 3, 4, 5), now=NOW, policy=self.policy
        )
        assert decision.locked
        assert decision.scope == "ip"

    @given(st.lists(st.floats(min_value=0, max_value=60), max_size=10))
    def test_never_locked_with_fewer_failures_than_the_threshold(
        self, minutes: list[float]
    ) -> None:
        failures = self._ago(*minutes[:2])
        assert not lockout(
            user_failures=failures, ip_failures=failures, now=NOW, policy=self.policy
        ).locked


class TestAccessClaims:
    def test_round_trip(self) -> None:
        claims = access_claims(
            user_id=7, session_version=3, issued_at=NOW, lifetime=timedelta(minutes=5)
        )
        checked = check_access_claims(claims, now=NOW + timedelta(minutes=1))
        assert (checked.user_id, checked.session_version) == (7, 3)

    def test_expired(self) -> None:
        claims = access_claims(
            user_id=7, session_version=3, issued_at=NOW, lifetime=timedelta(minutes=5)
        )
        with pytest.raises(TokenRejected, match="expired"):
            check_access_claims(claims, now=NOW + timedelta(minutes=6))

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"aud": "someone-else"}, "not issued for this API"),
            ({"typ": "refresh"}, "not an access token"),
            ({"sub": "admin"}, "names no user"),
            ({"sv": None}, "no session version"),
            ({"sv": True}, "no session version"),
            ({"exp": "soon"}, "no expiry"),
        ],
    )
    def test_wrong_claims(self, change: dict[str, object], message: str) -> None:
        claims = {
            **access_claims(
                user_id=7, session_version=3, issued_at=NOW, lifetime=timedelta(minutes=5)
            ),
            **change,
        }
        with pytest.raises(TokenRejected, match=message):
            check_access_claims(claims, now=NOW)


def test_an_address_is_rate_limited_whatever_the_outcome() -> None:
    policy = LockoutPolicy(ip_attempts_per_minute=3)
    assert not lockout(
        user_failures=[], ip_failures=[], now=NOW, policy=policy, ip_attempts_last_minute=2
    ).locked
    decision = lockout(
        user_failures=[], ip_failures=[], now=NOW, policy=policy, ip_attempts_last_minute=3
    )
    assert decision.locked
    assert decision.scope == "rate"
    assert "wait a minute" in decision.message


class TestSecretStrength:
    @pytest.mark.parametrize(
        "value",
        [
            "a" * 32,
            "s" * 48,
            "ab" * 16,
            "abcdefgh" * 4,
            "0123456789abcdef" * 2,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        ],
    )
    def test_guessable_secrets_are_refused(self, value: str) -> None:
        assert secret_problem(value, min_length=32) is not None

    def test_a_short_secret_says_so(self) -> None:
        assert secret_problem("x7Qp9", min_length=32) == "shorter than 32 characters"

    def test_generated_secrets_are_accepted(self) -> None:
        for _ in range(2000):
            raw = secrets.token_bytes(16)
            for encoded in (raw.hex(), uuid.UUID(bytes=raw).hex, secrets.token_urlsafe(24)):
                assert secret_problem(encoded, min_length=32) is None, encoded
