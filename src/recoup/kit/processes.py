"""Child processes that end with the process that started them."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait


def exit_with_parent(name: str) -> None:
    """End this child process as soon as its parent is gone, however the parent ended.

    A parent killed outright (``kill -9``, out of memory) leaves an idle pool worker waiting on
    its task queue, or a reader blocked in ``Queue.put``, for ever, holding its data and
    imported modules. A daemon thread (``name``) waits on the parent's sentinel, readable once
    the parent exits, and ends the process. Does nothing in a process that has no parent.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, name=name, daemon=True).start()
