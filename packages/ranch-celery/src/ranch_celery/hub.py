"""Waking the worker's event loop for acknowledgements sent from pool threads (kombu < 5.7).

With ``-P threads`` a late acknowledgement (``task_acks_late``) is queued
from the pool thread with ``hub.call_soon``; kombu before 5.7 has no way for
another thread to interrupt the event loop's poll, so while every prefetched
message waits for its ack (the prefetch window is full) the loop sleeps and
the worker stops consuming: plain Celery tasks stall the same way. kombu 5.7
added a waker; on older kombu (the newest for Python 3.9 is 5.6), the Ranch
bootstep installs a timer that makes the loop look at its queued callbacks
every :data:`NUDGE_INTERVAL` seconds.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

logger = logging.getLogger("ranch_celery")

#: Seconds between two wake-ups of the event loop.
NUDGE_INTERVAL = 0.02


def needs_nudge(worker: Any) -> bool:
    """Whether ``worker`` runs an event loop that pool threads cannot wake."""
    hub = getattr(worker, "hub", None)
    if hub is None or hasattr(hub, "_create_waker"):
        return False
    pool_cls = getattr(worker, "pool_cls", None)
    where = f"{getattr(pool_cls, '__module__', '')}.{getattr(pool_cls, '__name__', pool_cls)}"
    return "thread" in where.lower()


def _look() -> None:
    """Nothing: firing a timer is enough to end the loop's poll."""


def install_nudge(worker: Any) -> Optional[Any]:
    """Install the timer on ``worker``'s event loop if it needs one; return it."""
    if not needs_nudge(worker):
        return None
    logger.info(
        "ranch: kombu < 5.7 on the threads pool: the event loop is woken every %.2f s so that late "
        "acknowledgements from pool threads are sent",
        NUDGE_INTERVAL,
    )
    return worker.hub.call_repeatedly(NUDGE_INTERVAL, _look)
