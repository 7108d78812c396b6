"""Runtime cost (``cost="runtime"``) at the facade: what the conformance suite's
``ranch_core.testing.runtime`` (run on every storage) does not cover."""

from __future__ import annotations

import pytest
from ranch_core import FairScheduler, InMemoryStorage, RuntimeCost
from ranch_core.protocols import Storage
from ranch_core.testing.runtime import RuntimeCostProperties


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


def test_a_storage_without_runtime_costs_fails_the_runtime_tests() -> None:
    class Suite(RuntimeCostProperties):
        def make_storage(self) -> Storage:
            return NoRuntime()  # type: ignore[return-value]

    with pytest.raises(pytest.fail.Exception, match=r"ranch_core\.protocols\.RuntimeCosts"):
        Suite().test_charges_the_estimate_and_corrects_it_at_finish()


def test_runtime_cost_takes_no_weight_function() -> None:
    with pytest.raises(ValueError, match="weight_function"):
        FairScheduler(cost="runtime", weight_function=lambda key, meta: 1.0)


def test_first_estimate_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="first_estimate"):
            RuntimeCost(first_estimate=bad)
    assert FairScheduler(cost=RuntimeCost(first_estimate=0.01)).runtime == RuntimeCost(0.01)
