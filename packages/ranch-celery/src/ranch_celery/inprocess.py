"""A Celery worker in a thread of this process, for the ``memory://`` broker (demo, tests, a first try)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from ranch_celery.registry import RanchState


def _nudge_stop(app: Any) -> None:
    """Make the worker thread stop now instead of after its poll timeouts.

    ``start_worker`` stops its thread through ``should_terminate``, which the
    worker loop checks between two polls of the broker (and it polls once
    more after deciding to stop); two wake-ups that find nothing to do
    (no-ops, by design) end both polls at once.
    """
    from celery.worker import state as worker_state

    worker_state.should_terminate = 0
    for backlog in list(RanchState.of(app).backlogs.values())[:1]:
        backlog.wake()
        backlog.wake()


@contextlib.contextmanager
def in_process_worker(app: Any, *, hostname: str = "ranch@localhost") -> Iterator[Any]:
    """Run a solo worker for ``app`` in a thread while the ``with`` block runs.

    Uses :func:`celery.contrib.testing.worker.start_worker` (a real
    ``WorkController``, including Ranch's lease-keeper bootstep).
    """
    from celery.contrib.testing.worker import start_worker

    # start_worker connects without a hostname, which kombu warns about for memory://.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", hostname=hostname
    ) as worker:
        try:
            yield worker
        finally:
            _nudge_stop(app)
