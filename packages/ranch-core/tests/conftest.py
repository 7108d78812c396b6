"""Fixtures of the ranch-core tests (the shared servers and Hypothesis profiles: the root conftest.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import List

import pytest
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


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Under mutmut (``nox -s mutation``), run a mutant's tests fastest first, by the
    durations mutmut measured (``mutmut-stats.json`` in its working folder): it stops at
    the first failure (``-x``), so most mutants are killed in a fraction of a second
    instead of after whichever slow conformance test came first. Other runs keep the
    file order."""
    stats = Path("mutmut-stats.json")
    if not os.environ.get("MUTANT_UNDER_TEST") or not stats.is_file():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
