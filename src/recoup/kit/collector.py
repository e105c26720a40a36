"""Pausing Python's cyclic garbage collector around batch work.

Batch work (a cycle stage, a gate batch) allocates millions of small objects and almost no
reference cycles, so reference counting frees them. Left to its allocation thresholds the
cyclic collector keeps rescanning every long-lived object of the process (the portfolio's
columns, the ORM) while the batch runs. Paused, it simply resumes after the batch: a forced
full collection there would cost seconds in a long-lived process with a large heap (a worker,
a server) for the few cycles a batch leaves.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Pause the cyclic collector for the block, then let it run again (if it was running)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
