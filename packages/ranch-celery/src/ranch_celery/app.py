"""Wiring Ranch into a Celery app: the internal tasks and the worker bootstep.

:func:`install` runs once per app, when its first ``@lru_task`` is
declared: it registers the wake-up task under :data:`WAKE_UP_TASK` and,
for messages published by earlier versions, under
:data:`LEGACY_WAKE_UP_TASK`; the delayed-retry task :data:`RESUBMIT_TASK`;
and :class:`~ranch_celery.bootstep.RanchStep` on the worker blueprint.
"""

from __future__ import annotations

from typing import Any

from ranch_celery.bootstep import RanchStep
from ranch_celery.execution import wake_up
from ranch_celery.registry import RanchState
from ranch_celery.retries import resubmit
from ranch_celery.wakeups import LEGACY_WAKE_UP_TASK, RESUBMIT_TASK, WAKE_UP_TASK

_INTERNAL = {"bind": True, "ignore_result": True, "acks_late": True, "shared": False}


def install(app: Any) -> RanchState:
    """Register the internal tasks and the bootstep on ``app`` (once); return its registry."""
    state = RanchState.of(app)
    if state.installed:
        return state
    with state.lock:
        if not state.installed:
            app.task(name=WAKE_UP_TASK, **_INTERNAL)(wake_up)
            app.task(name=LEGACY_WAKE_UP_TASK, **_INTERNAL)(wake_up)
            app.task(name=RESUBMIT_TASK, **_INTERNAL)(resubmit)
            app.steps["worker"].add(RanchStep)
            state.installed = True
    return state
