"""Worker logs that read like plain Celery's: the wake-up's own lines go to DEBUG.

A wake-up message is a task of its own to Celery, so at INFO the worker
would log ``Task ranch_celery.wake_up[...] received`` and ``... succeeded``
beside the user's call (whose own outcome line, ``Task shop.process[<id>]
succeeded in ...``/``raised ...``, Celery's tracer writes as usual).
:class:`InternalTaskLogFilter`, installed on the loggers Celery writes those
lines with (``celery.worker.strategy``, ``celery.app.trace``), turns the
internal tasks' INFO lines into DEBUG lines; their warnings and errors stay.
"""

from __future__ import annotations

import logging
from typing import Any

from ranch_celery.wakeups import INTERNAL_TASKS

#: The loggers of Celery's "received" and "succeeded" lines.
CELERY_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _task_name(record: logging.LogRecord) -> Any:
    data = getattr(record, "data", None)
    if not isinstance(data, dict):
        data = record.args if isinstance(record.args, dict) else None
    return data.get("name") if isinstance(data, dict) else None


class InternalTaskLogFilter(logging.Filter):
    """Lower the INFO lines of Ranch's internal tasks to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_name(record) not in INTERNAL_TASKS:
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return True


def install_log_filter() -> None:
    """Install :class:`InternalTaskLogFilter` on Celery's loggers (once per process)."""
    for name in CELERY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, InternalTaskLogFilter) for existing in logger.filters):
            logger.addFilter(InternalTaskLogFilter())
