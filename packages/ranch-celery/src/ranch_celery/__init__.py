"""Fair scheduling for Celery.

::

    from celery import Celery
    from ranch_celery import lru_task

    app = Celery("proj", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")

    @lru_task(app)
    def resize(image_id):
        ...

    resize.lru_delay("customer-42", image_id)   # fair across customers

Reading order: :mod:`ranch_celery.task` (``lru_task``, the API),
:mod:`ranch_celery.options` (per-call options), :mod:`ranch_celery.producer`
(storing calls), :mod:`ranch_celery.results` (announcing them to the result
backend), :mod:`ranch_celery.canvas` and :mod:`ranch_celery.batching`
(signatures; one bulk submit per group), :mod:`ranch_celery.registry` and
:mod:`ranch_celery.backlog` (tasks and their backlogs),
:mod:`ranch_celery.config` and :mod:`ranch_celery.storage` (settings,
storage at first use), :mod:`ranch_celery.wakeups` (publishing), then the
worker side: :mod:`ranch_celery.app` (wiring), :mod:`ranch_celery.execution`
(running a call), :mod:`ranch_celery.limits` (per-call time limits),
:mod:`ranch_celery.retries`, :mod:`ranch_celery.replacing`
(``Task.replace``), :mod:`ranch_celery.revoking` (Celery's revoke of a
waiting call), :mod:`ranch_celery.sweep`, :mod:`ranch_celery.bootstep`,
:mod:`ranch_celery.hub` (kombu < 5.7's event loop), :mod:`ranch_celery.logs`.
"""

from __future__ import annotations

import warnings
from typing import Any

from ranch_celery.backlog import EXPIRED_REASON, CeleryBacklog
from ranch_celery.config import SerializerType
from ranch_celery.errors import StorageNotConfigured
from ranch_celery.status import get_status
from ranch_celery.task import LRUResult, LRUTask, LRUTaskMixin, lru_task
from ranch_celery.wakeups import RESUBMIT_TASK, WAKE_UP_TASK

__version__ = "0.1.0"

__all__ = [
    "EXPIRED_REASON",
    "RESUBMIT_TASK",
    "WAKE_UP_TASK",
    "CeleryBacklog",
    "LRUResult",
    "LRUTask",
    "LRUTaskMixin",
    "SerializerType",
    "StorageNotConfigured",
    "__version__",
    "get_status",
    "lru_task",
]


def __getattr__(name: str) -> Any:
    if name == "PRIORITIZE_TASK":
        warnings.warn(
            "ranch_celery.PRIORITIZE_TASK is deprecated: the internal message is a wake-up, WAKE_UP_TASK",
            DeprecationWarning,
            stacklevel=2,
        )
        return WAKE_UP_TASK
    raise AttributeError(f"module 'ranch_celery' has no attribute {name!r}")
