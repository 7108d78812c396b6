"""Helpers shared by the ranch-celery test modules (importable: the tests directory is on sys.path)."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, worker: Any = None) -> None:
    """Poll ``predicate`` until true; fail with ``what`` (and the worker log) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = f"\n--- worker log ---\n{worker.log_tail()}" if worker is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(0.05)
