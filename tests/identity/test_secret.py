import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recoup import config
from recoup.app import create_app
from recoup.cli import app as cli
from recoup.identity.secret import InsecureConfiguration, secret_key
from recoup.kit import crypto

STRONG_SECRET = secrets.token_urlsafe(48)


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Settings for a production process with nothing configured yet."""
    monkeypatch.setenv("RECOUP_ENV", "production")
    monkeypatch.setenv("RECOUP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RECOUP_SECRET_KEY", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    config.get_settings.cache_clear()


class TestProductionRefusesWeakSecrets:
    def test_missing_secret(self, production: Path) -> None:
        with pytest.raises(InsecureConfiguration, match="RECOUP_SECRET_KEY"):
            create_app()

    @pytest.mark.parametrize(
        "value",
        [
            "change-me",
            "secret",
            "short-but-not-default",
            "a" * 32,
            "ab" * 24,
            "0123456789abcdef" * 3,
            "abcdefghijklmnopqrstuvwxyz0123456789",
        ],
    )
    def test_default_or_short_secret(
        self, production: Path, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv("RECOUP_SECRET_KEY", value)
        config.get_settings.cache_clear()
        with pytest.raises(InsecureConfiguration):
            create_app()

    def test_missing_key_ring(self, production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECOUP_SECRET_KEY", STRONG_SECRET)
        config.get_settings.cache_clear()
        with pytest.raises(InsecureConfiguration, match="key ring"):
            create_app()

    def test_a_key_ring_without_an_audit_key(
        self, production: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RECOUP_SECRET_KEY", STRONG_SECRET)
        ring = crypto.KeyRing.generate()
        crypto.save_keyring(
            ring._replace(audit_keys={}, audit_active=None), production / "keyring.json"
        )
        config.get_settings.cache_clear()
        with pytest.raises(InsecureConfiguration, match="no audit key"):
            create_app()

    def test_starts_with_both(self, production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECOUP_SECRET_KEY", STRONG_SECRET)
        crypto.save_keyring(crypto.KeyRing.generate(), production / "keyring.json")
        config.get_settings.cache_clear()
        assert create_app() is not None
        assert not (production / "secret_key").exists()

    def test_the_cli_refuses_too(self, production: Path) -> None:
        result = CliRunner().invoke(cli, ["users", "list"])
        assert result.exit_code == 1
        assert "RECOUP_SECRET_KEY" in result.output


def test_development_generates_and_keeps_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECOUP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RECOUP_SECRET_KEY", raising=False)
    config.get_settings.cache_clear()
    try:
        first = secret_key()
        path = tmp_path / "secret_key"
        assert path.read_text() == first
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(first) >= 32
        assert secret_key(config.Settings()) == first
    finally:
        monkeypatch.undo()
        config.get_settings.cache_clear()
