"""The browser tests' own safeguards: they cannot pass by accident where they must run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.support import require_chromium


class TestMissingChromium:
    def test_fails_in_ci(self, tmp_path: Path) -> None:
        with pytest.raises(pytest.fail.Exception, match="required in CI"):
            require_chromium(str(tmp_path / "chromium"), in_ci=True)

    def test_skips_elsewhere(self, tmp_path: Path) -> None:
        with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
            require_chromium(str(tmp_path / "chromium"), in_ci=False)

    def test_an_installed_chromium_is_used(self, tmp_path: Path) -> None:
        installed = tmp_path / "chromium"
        installed.touch()
        require_chromium(str(installed), in_ci=True)
