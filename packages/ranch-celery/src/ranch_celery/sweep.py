"""The sweep of a worker process: the lease keeper and the idle refill.

:func:`ensure_keeper` runs one :class:`ranch_core.leases.LeaseKeeper` per
app and process: every ``sweep_interval`` it renews the leases of the calls
running here and puts back (with a new wake-up) the calls of workers that
died. :class:`IdleRefill` runs in the worker's main process and
re-announces calls whose wake-up is held elsewhere.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Dict, Optional

from ranch_core.leases import LeaseKeeper

from ranch_celery.registry import RanchState
from ranch_celery.wakeups import queue_of

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


class IdleRefill:
    """Main-process thread: re-announce calls that wait while this worker sits idle.

    Every stored call has one wake-up message, but a wake-up can be held
    somewhere it will not run soon: prefetched by a worker that was then
    killed (the broker redelivers it only after its visibility timeout), or
    reserved by a busy worker. When this worker has reserved nothing for two
    checks in a row while calls of a backlog it consumes are waiting, it
    publishes ``min(waiting, concurrency)`` extra wake-ups. Surplus wake-ups
    find nothing to do later (cheap no-ops); a call never runs twice.
    """

    #: Idle checks in a row before wake-ups are published.
    PATIENCE = 2

    def __init__(self, state: RanchState, concurrency: int, interval: float) -> None:
        self.state = state
        self.concurrency = max(1, concurrency)
        self.interval = interval
        self._idle: Dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ranch-idle-refill", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                logger.exception("ranch: idle refill check failed")

    def check(self) -> int:
        """One check; returns the number of wake-ups published."""
        from celery.worker import state as worker_state

        busy = bool(worker_state.reserved_requests)
        consumed = set(self.state.app.amqp.queues.consume_from)
        published = 0
        for backlog in self.state.resolve():
            waiting = 0 if busy else backlog.storage.waiting()
            if waiting <= 0 or queue_of(self.state.app, backlog.route_task) not in consumed:
                self._idle[backlog.name] = 0
                continue
            self._idle[backlog.name] = self._idle.get(backlog.name, 0) + 1
            if self._idle[backlog.name] >= self.PATIENCE:
                self._idle[backlog.name] = 0
                count = min(waiting, self.concurrency)
                logger.info(
                    "ranch: %d calls of %r wait while this worker idles; publishing %d wake-ups",
                    waiting,
                    backlog.name,
                    count,
                )
                for _ in range(count):
                    backlog.wake()
                published += count
        return published


_LOCK = threading.Lock()
