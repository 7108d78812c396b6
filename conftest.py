"""Fixtures shared by every test directory (real servers on loopback) and the Hypothesis profiles.

Hypothesis profiles, chosen with ``RANCH_HYPOTHESIS_PROFILE`` (default ``ci``):

* ``ci`` — 60 examples per property, derandomized: every CI run draws the
  same examples, so a run is reproducible and a red run is red again;
* ``dev`` — the same budget with fresh random examples on every run (use
  ``pytest --hypothesis-seed=N`` to replay one);
* ``coverage`` — half of ``ci``'s examples (30), derandomized: the run under
  coverage on Python 3.11 (``nox -s tests``), where tracing makes the
  property tests two to three times as slow; 3.9 and 3.13 run them at
  ``ci``'s budget in the same CI run;
* ``deep`` — 500 examples per property, random (``nox -s deep``);
* ``mutation`` — a third of ``ci``'s examples (20), derandomized, without the
  shrink phase (``nox -s mutation``): a mutant only has to fail, shrinking its
  counterexample can take minutes, and a mutant that survives runs every test
  that reaches its function, up to 569 of them.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, Phase, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "print_blob": True}
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("coverage", max_examples=30, derandomize=True, **_COMMON)
settings.register_profile("deep", max_examples=500, **_COMMON)
settings.register_profile(
    "mutation",
    max_examples=20,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    **_COMMON,
)
settings.load_profile(os.environ.get("RANCH_HYPOTHESIS_PROFILE", "ci"))


#: The test files that take longest (``--durations=0`` of a full run, 2026-11-30),
#: longest first, those that keep a core busy (the Hypothesis properties) taking
#: turns with those that mostly wait on workers. Collected first, so that
#: pytest-xdist (``--dist loadfile`` hands out files in collection order) starts
#: them first and the run does not end with one process on a long file while the
#: others idle, nor start with four processes on two cores all computing.
SLOW_FILES = (
    "packages/ranch-redis/tests/test_redis_conformance.py",
    "packages/ranch-dramatiq/tests/test_dramatiq_liveness.py",
    "packages/ranch-redis/tests/test_redis_differential.py",
    "packages/ranch-celery/tests/test_celery_wakeups.py",
    "packages/ranch-redis/tests/test_redis_async_conformance.py",
    "packages/ranch-celery/tests/test_celery_controls_workers.py",
    "packages/ranch-core/tests/test_core_memory_conformance.py",
    "packages/ranch-celery/tests/test_celery_canvas.py",
    "packages/ranch-core/tests/test_core_async_conformance.py",
    "packages/ranch-celery/tests/test_celery_options.py",
    "packages/ranch-redis/tests/test_redis_cli.py",
    "tests/test_demo_leaves_nothing.py",
    "packages/ranch-dramatiq/tests/test_dramatiq_controls.py",
    "packages/ranch-redis/tests/test_redis_dashboard.py",
    "packages/ranch-celery/tests/test_celery_liveness.py",
    "packages/ranch-redis/tests/test_redis_blocking.py",
    "packages/ranch-celery/tests/test_celery_fairness.py",
    "packages/ranch-dramatiq/tests/test_dramatiq_processes.py",
)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Put the files of :data:`SLOW_FILES` first, in that order; the rest, and
    the tests within each file, keep their order."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}

    def order(pair: Tuple[int, pytest.Item]) -> Tuple[int, int]:
        index, item = pair
        return rank.get(item.nodeid.split("::", 1)[0], len(rank)), index

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[object]:
    """One real ``redis-server`` on 127.0.0.1 and a free port for the session."""
    from ranch_redis.testing import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: object) -> Iterator[str]:
    """URL of the session's Redis, flushed before each test."""
    import redis

    url: str = redis_server.url  # type: ignore[attr-defined]
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
    yield url
