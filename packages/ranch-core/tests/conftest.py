"""Fixtures of the ranch-core tests (the shared servers and Hypothesis profiles: the root conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

import pytest


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
