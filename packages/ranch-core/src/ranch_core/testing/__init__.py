"""The conformance suite every Ranch storage must pass.

Run it against your storage with one class::

    from ranch_core.testing import StorageConformance

    class TestMyStorage(StorageConformance):
        def make_storage(self):
            return MyStorage(...)   # new and empty on every call

pytest then runs a stateful Hypothesis test comparing every operation with
:class:`ReferenceModel` (the spec, written naively), plus one property test
per guarantee: least-recently-served order at equal weights, weighted shares,
bounded lag, a new key served within one round, no banking of credit, FIFO
within a key, expiry, and leases that lose and duplicate nothing; runtime
cost (:mod:`ranch_core.testing.runtime`: the SFQ(D) bound with D slots);
two-level keys and the controls at both of their levels
(:mod:`ranch_core.testing.groups`: a string key's controls are its whole
group's, checked against :class:`~ranch_core.testing.model.ModelControls`); and the
bad-input checks, and the waiting properties of ``pop(timeout=)``. An
async storage runs the same suite through :class:`BlockingFacade`. Needs
``hypothesis`` (``pip install "ranch-core[testing]"``).
"""

from ranch_core.testing.facade import BlockingFacade
from ranch_core.testing.machine import BAD_PUSHES, build_machine
from ranch_core.testing.model import ReferenceModel
from ranch_core.testing.suite import StorageConformance

__all__ = ["BAD_PUSHES", "BlockingFacade", "ReferenceModel", "StorageConformance", "build_machine"]
