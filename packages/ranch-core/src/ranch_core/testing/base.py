"""What every part of the conformance suite shares: strategies, a clock, the storage factory, budgets."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ranch_core.protocols import Storage
from ranch_core.scheduler import FairScheduler

KEY_NAMES = st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"])
POW2_WEIGHTS = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])
EXPIRY_SECONDS = st.sampled_from([0.0, 1.0, 3.0])
NO_VALUE: st.SearchStrategy[Optional[float]] = st.none()
ANY_WEIGHTS = st.floats(min_value=0.05, max_value=20.0, allow_nan=False, allow_infinity=False)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lag(counts: Dict[str, int], weights: Dict[str, float], i: str, j: str) -> float:
    """How far apart keys ``i`` and ``j`` are in weighted service."""
    return abs(counts[i] * weights[i] - counts[j] * weights[j])


class ConformanceBase:
    """The storage factory and the Hypothesis budgets every part of the suite uses.

    :attr:`two_level_keys` says whether the storage takes ``(group, member)``
    keys (:mod:`ranch_core.keys`); the suite then mixes them with string keys.
    :attr:`group_controls` whether its controls hold at both levels of them.

    The budgets take the number of examples from the Hypothesis profile that
    is loaded when a test runs (Hypothesis' default: 100; Ranch's own test
    suite loads ``ci``, ``dev`` or ``deep``), so a profile can raise or lower
    every property at once. Override them in a subclass to fix your own
    (:attr:`controls_settings` budgets the per-key controls machine,
    :attr:`group_controls_settings` the two-level one).
    """

    #: The storage takes two-level keys. Every storage must, in the end; a
    #: storage that does not yet sets it ``False`` (and refuses pairs).
    two_level_keys: bool = True
    #: A string key's controls are its whole group's, and a call starts only
    #: if its member and its group allow it (README, "Two-level keys"). Every
    #: storage must; ``False`` only while a storage is being built (the
    #: group-control tests then check nothing).
    group_controls: bool = True

    @property
    def conformance_settings(self) -> settings:
        """Budget of the stateful test against the reference model."""
        return settings(
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )

    @property
    def token_settings(self) -> settings:
        """Budget of the stateful wake-up token test (two thirds of the profile's examples)."""
        return settings(
            max_examples=max(1, settings().max_examples * 2 // 3),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )

    @property
    def controls_settings(self) -> settings:
        """Budget of the stateful per-key controls test (three times the profile's examples)."""
        return settings(
            max_examples=settings().max_examples * 3,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )

    @property
    def group_controls_settings(self) -> settings:
        """Budget of the stateful two-level controls test: a third of
        :attr:`controls_settings`' examples (each step checks seven keys' counts)."""
        budget = self.controls_settings
        return settings(budget, max_examples=max(1, budget.max_examples // 3))

    @property
    def property_settings(self) -> settings:
        """Budget of each property test."""
        return settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

    def make_storage(self) -> Storage:
        """A new, empty storage."""
        raise NotImplementedError

    def scheduler(self, **options: Any) -> Tuple[FairScheduler, Clock]:
        """A scheduler on a new storage, with a clock the test moves."""
        clock = Clock()
        return FairScheduler(self.make_storage(), clock=clock, **options), clock
