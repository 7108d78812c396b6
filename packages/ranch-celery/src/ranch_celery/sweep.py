"""The sweep of a worker process: the lease keeper.

:func:`ensure_keeper` runs one :class:`ranch_core.leases.LeaseKeeper` per
app and process: every ``sweep_interval`` it renews the leases of the calls
running here (and their wake-up tokens), puts back the calls of workers
that died, retires lost wake-up tokens and publishes their replacements.
(The idle refill of earlier versions is gone: a wake-up prefetched by a
killed worker, or reserved by a busy one, is a token whose deadline passes,
and the sweep replaces it; see ranch-core's "Wake-ups".)
"""

from __future__ import annotations

import logging
import os

from ranch_core.forks import ProcessLock
from ranch_core.leases import LeaseKeeper

from ranch_celery.registry import RanchState

logger = logging.getLogger("ranch_celery")

_KEEPER = "lease keeper"


def ensure_keeper(state: RanchState) -> None:
    """Run a :class:`~ranch_core.leases.LeaseKeeper` for ``state`` in this process (once)."""
    pid = os.getpid()
    current = state.worker.get(_KEEPER)
    if current is not None and current[0] == pid:
        return
    with _LOCK:
        current = state.worker.get(_KEEPER)
        if current is None or current[0] != pid:
            keeper = LeaseKeeper(state.dispatchers, state.sweep_interval())
            keeper.start()
            state.worker[_KEEPER] = (pid, keeper)


def stop_keeper(state: RanchState) -> None:
    """Stop this process's lease keeper of ``state`` (worker shutdown)."""
    with _LOCK:
        current = state.worker.pop(_KEEPER, None)
        if current is not None and current[0] == os.getpid():
            current[1].stop(timeout=5)


_LOCK = ProcessLock()
