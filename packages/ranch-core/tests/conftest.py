"""Fixtures of the ranch-core tests (the shared servers and Hypothesis profiles: the root conftest.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ranch_core_teststeps, shared by the tests

#: The core test files whose module-scoped fixture runs a demo scenario first.
DEMO_RUNS = (
    "tests/test_core_demo_groups.py",
    "tests/test_core_demo_limits.py",
    "tests/test_core_demo_runtime.py",
)


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

    def cost(item: pytest.Item) -> Tuple[bool, float]:
        # mutmut's durations leave out module-scoped setup: a demo run of 1.5-5 s
        # would otherwise come early, before the failure of almost every mutant.
        return item.nodeid.startswith(DEMO_RUNS), durations.get(item.nodeid, 0.0)

    items.sort(key=cost)
    # A mutant that makes a pop or a wait block forever is caught in 10 s, not after
    # setup.cfg's 30 s: the slowest core test (a demo run) takes 5 s under the
    # mutation profile. A test with a timeout of its own keeps it.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(10))
