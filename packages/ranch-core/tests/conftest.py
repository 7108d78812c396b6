"""Fixtures of the ranch-core tests (the shared servers and Hypothesis profiles: the root conftest.py)."""

from __future__ import annotations

import os
import threading

from ranch_core.testing import facade


def _forget_the_facade_loop() -> None:
    """In a forked child, forget the parent's private facade loop: the thread that
    ran it did not survive the fork, so a coroutine sent to it would wait forever.

    mutmut runs each mutant in a child forked from the process that ran the tests
    first; without this, every test through ``BlockingFacade`` hangs there and its
    mutant counts as a timeout (a kill) whatever it changes.
    """
    facade._loop = None
    facade._loop_lock = threading.Lock()  # it may have been held at the fork


os.register_at_fork(after_in_child=_forget_the_facade_loop)
