"""Pausing the cyclic collector around batch work: one helper, restored as it was found."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

from recoup.kit import collector

SOURCE = Path(collector.__file__).resolve().parents[1]


def test_the_collector_is_paused_in_the_block_and_runs_again_after() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_block_still_resumes_the_collector() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_a_collector_paused_by_the_caller_stays_paused() -> None:
    gc.disable()
    try:
        with collector.paused():
            with collector.paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_no_module_pauses_the_collector_by_hand() -> None:
    by_hand = re.compile(r"\bgc\.(disable|enable|isenabled)\(")
    offenders = [
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if path.name != "collector.py" and by_hand.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"use recoup.kit.collector.paused() in {offenders}"
