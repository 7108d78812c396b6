"""``StorageConformance``: every guarantee of Ranch, as tests any storage inherits.

The guarantees live in one module per group (:mod:`~ranch_core.testing.fairness`,
:mod:`~ranch_core.testing.lifecycle`, :mod:`~ranch_core.testing.batches`,
:mod:`~ranch_core.testing.badinput`, :mod:`~ranch_core.testing.waiting`,
:mod:`~ranch_core.testing.controls`, :mod:`~ranch_core.testing.delayed`,
:mod:`~ranch_core.testing.runtime`, :mod:`~ranch_core.testing.groups`); this class gathers them with the
stateful test that checks every step against the reference model.
"""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from ranch_core.testing.badinput import BadInputProperties
from ranch_core.testing.batches import BatchAndWakeupProperties
from ranch_core.testing.controls import ControlProperties
from ranch_core.testing.delayed import DelayedProperties
from ranch_core.testing.fairness import FairnessProperties
from ranch_core.testing.groups import GroupControlProperties, TwoLevelKeyProperties
from ranch_core.testing.lifecycle import LifecycleProperties
from ranch_core.testing.machine import KEYS, TWO_LEVEL_KEYS, build_machine
from ranch_core.testing.runtime import RuntimeCostProperties
from ranch_core.testing.waiting import WaitingProperties


class StorageConformance(
    FairnessProperties,
    LifecycleProperties,
    BatchAndWakeupProperties,
    BadInputProperties,
    WaitingProperties,
    ControlProperties,
    DelayedProperties,
    RuntimeCostProperties,
    TwoLevelKeyProperties,
    GroupControlProperties,
):
    """Subclass this in a test module and implement :meth:`make_storage`.

    Each test builds its own storage through :meth:`make_storage`, which must
    return a new, empty storage every call (for a shared server, a fresh
    namespace), using the JSON serializer: the bad-input checks expect sets,
    NaN and arbitrary objects to be refused. The Hypothesis budgets are
    :attr:`conformance_settings`, :attr:`token_settings` and
    :attr:`property_settings` (see :class:`~ranch_core.testing.base.ConformanceBase`).
    """

    def test_matches_reference_model(self) -> None:
        """Every operation, interleaved at random, does what the model does."""
        machine = build_machine(self.make_storage, TWO_LEVEL_KEYS if self.two_level_keys else KEYS)
        run_state_machine_as_test(machine, settings=self.conformance_settings)
