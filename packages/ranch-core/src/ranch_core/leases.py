"""``LeaseKeeper``: the worker-side thread that keeps leases and backlogs healthy."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable, Optional, Sequence

if TYPE_CHECKING:
    from ranch_core.dispatcher import FairDispatcher

logger = logging.getLogger("ranch_core.leases")


class LeaseKeeper:
    """A daemon thread calling :meth:`FairDispatcher.sweep` every ``interval`` seconds.

    Start one per worker process (a Celery bootstep, a Dramatiq middleware).
    ``interval`` should be well under the lease, e.g. a third of it.
    """

    def __init__(self, dispatchers: Callable[[], Sequence[FairDispatcher]], interval: float) -> None:
        self._dispatchers = dispatchers
        self.interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ranch-lease-keeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def sweep_once(self) -> int:
        """One pass over every dispatcher; errors are logged, never raised."""
        total = 0
        try:
            dispatchers = self._dispatchers()
        except Exception:
            # Building a dispatcher may do I/O (writing a backlog's defaults): the thread
            # must outlive a storage outage, so this pass is skipped and the next one retries.
            logger.exception("ranch: lease sweep could not list the backlogs")
            return 0
        for dispatcher in dispatchers:
            try:
                total += dispatcher.sweep()
            except Exception:
                logger.exception("ranch: lease sweep failed")
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep_once()
