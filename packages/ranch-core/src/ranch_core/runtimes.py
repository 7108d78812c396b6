"""Timing the user's own function of a call, for ``cost="runtime"`` (README, "Fair by time").

Left to itself, a storage charges a call the time from its pop to its
finish: the lease. Inside a real worker that includes the adapter's own
per-call work (taking the call from the storage, decoding it, the finish
step, publishing wake-ups), a fixed amount per call that makes short calls
look dearer than they are. So the adapters time the user's function itself
with a :class:`RunTimer` (``time.perf_counter`` right around the call) and
hand the result to :meth:`~ranch_core.dispatcher.FairDispatcher.finish` or
:meth:`~ranch_core.dispatcher.FairDispatcher.retry` as ``run_time``; the
dispatcher passes it on as the storage's ``cost`` only when the backlog
charges by run time (:attr:`~ranch_core.dispatcher.FairDispatcher.measures_runtime`).
A call whose function never ran to an end (a killed worker, a hard time
limit) is charged as before, by its lease.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

R = TypeVar("R")


class RunTimer:
    """Times the run of one call's function (the user's code), in seconds.

    Call the function through the timer: ``timer(fun, *args, **kwargs)``
    returns (or raises) what ``fun`` does and leaves its duration in
    :attr:`seconds`, whether it returned or raised (a retry, a failure).
    A call made through the timer while it is already timing one (the
    function calling itself, or another timed function) runs untimed: the
    outer run's time includes it.
    """

    __slots__ = ("_timing", "seconds")

    def __init__(self) -> None:
        #: The last timed run's duration; ``None`` until a run ended.
        self.seconds: Optional[float] = None
        self._timing = False

    def __call__(self, fun: Callable[..., R], /, *args: object, **kwargs: object) -> R:
        """``fun(*args, **kwargs)``, timed (see the class docstring)."""
        if self._timing:
            return fun(*args, **kwargs)
        self._timing = True
        started = time.perf_counter()
        try:
            return fun(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - started
            self._timing = False


__all__ = ["RunTimer"]
