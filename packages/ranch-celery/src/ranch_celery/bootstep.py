"""``RanchStep``: the worker bootstep that starts the sweep and quiets the wake-ups' log lines.

In the worker's main process it resolves the app's backlogs (a
contradiction between tasks shows at start-up), installs
:func:`ranch_celery.logs.install_log_filter`, and runs the lease keeper
(:mod:`ranch_celery.sweep`), which also replaces lost wake-ups; on kombu
before 5.7 with the threads pool it keeps the event loop awake for late
acknowledgements (:mod:`ranch_celery.hub`); and it makes Celery's
``revoke`` control command remove a revoked call waiting in a backlog
(:mod:`ranch_celery.revoking`). Pool processes that run
calls start their own lease keeper on first use, which also renews the
leases of their running calls.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from ranch_celery.hub import install_nudge
from ranch_celery.logs import install_log_filter
from ranch_celery.registry import RanchState
from ranch_celery.revoking import install_revoke_command
from ranch_celery.sweep import ensure_keeper, stop_keeper

logger = logging.getLogger("ranch_celery")


def worker_slots(worker: Any) -> int:
    """Calls ``worker`` runs at once: 1 for ``solo``, else its concurrency (prefork, threads, ...)."""
    pool_cls = getattr(worker, "pool_cls", None)
    where = f"{getattr(pool_cls, '__module__', '')}.{getattr(pool_cls, '__name__', pool_cls)}"
    if "solo" in where.lower():
        return 1
    concurrency = getattr(worker, "concurrency", None)
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency > 0:
        return concurrency
    return 1


def register_now(backlog: Any) -> None:
    """Register this worker's slots at once, in the starting thread (the lease
    keeper renews them), so tokens are sized to the fleet before the first
    wake-up; a storage that cannot be reached yet is left to the first sweep."""
    try:
        backlog.dispatcher().register_slots()
    except Exception as exc:  # noqa: BLE001 - the sweep registers them later
        logger.warning("ranch: could not register the slots of backlog %r yet (%r)", backlog.name, exc)


class RanchStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: lease keeper and log filter of Ranch."""

    label = "ranch lease keeper"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        install_log_filter()
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        """Start the lease keeper of this worker."""
        state = RanchState.of(parent.app)
        try:
            backlogs = state.resolve()
        except Exception:
            logger.exception("ranch: the app's lru_tasks contradict each other")
            backlogs = list(state.backlogs.values())
        slots = worker_slots(parent)
        for backlog in backlogs:
            backlog.set_slots(slots)
            register_now(backlog)
        ensure_keeper(state)
        install_nudge(parent)
        install_revoke_command()

    def stop(self, parent: Any) -> None:
        """Stop the lease keeper."""
        stop_keeper(RanchState.of(parent.app))

    def shutdown(self, parent: Any) -> None:
        """Same as :meth:`stop`."""
        self.stop(parent)
