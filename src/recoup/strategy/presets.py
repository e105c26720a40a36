"""Starting strategies per institution type, shipped as YAML files beside this module.

Institutions copy a preset into a strategy of their own and edit it there; a preset itself is
never activated.
"""

from __future__ import annotations

from importlib import resources

PRESETS = ("consumer_finance", "commercial_bank")


class UnknownPreset(ValueError):
    """No preset by that name."""


def preset_text(name: str) -> str:
    """The document of a preset, as shipped."""
    if name not in PRESETS:
        raise UnknownPreset(f"no strategy preset '{name}'; use one of {', '.join(PRESETS)}")
    return (
        resources.files("recoup.strategy")
        .joinpath("presets", f"{name}.yaml")
        .read_text(encoding="utf-8")
    )
