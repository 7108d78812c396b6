"""Runtime cost (``cost="runtime"``) on the in-memory storages, until the Redis
storage has it too and ``RuntimeCostProperties`` joins ``StorageConformance``."""

from __future__ import annotations

import pytest
from ranch_core import AsyncInMemoryStorage, FairScheduler, InMemoryStorage, RuntimeCost
from ranch_core.protocols import Storage
from ranch_core.testing import BlockingFacade
from ranch_core.testing.runtime import RuntimeCostProperties


class TestInMemoryRuntimeCost(RuntimeCostProperties):
    def make_storage(self) -> Storage:
        return InMemoryStorage()


class TestAsyncInMemoryRuntimeCost(RuntimeCostProperties):
    def make_storage(self) -> Storage:
        return BlockingFacade.of(AsyncInMemoryStorage)


class NoRuntime:
    """A storage without ``RuntimeCosts``: only the plain steps."""

    def __init__(self) -> None:
        self.inner = InMemoryStorage()

    def __getattr__(self, name: str) -> object:
        if name == "run_estimate":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_runtime_cost_needs_a_storage_that_has_it() -> None:
    with pytest.raises(TypeError, match="RuntimeCosts"):
        FairScheduler(NoRuntime(), cost="runtime")  # type: ignore[arg-type]


def test_runtime_cost_takes_no_weight_function() -> None:
    with pytest.raises(ValueError, match="weight_function"):
        FairScheduler(cost="runtime", weight_function=lambda key, meta: 1.0)


def test_first_estimate_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="first_estimate"):
            RuntimeCost(first_estimate=bad)
    assert FairScheduler(cost=RuntimeCost(first_estimate=0.01)).runtime == RuntimeCost(0.01)
