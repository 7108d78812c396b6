"""Timing a task's own function while Ranch runs one of its calls (``cost="runtime"``).

Celery's tracer calls the task's ``run`` (the decorated function) between
its own per-call work: signals, storing the result, the log line. Ranch
charges a backlog of ``cost="runtime"`` the time of the function alone
(:mod:`ranch_core.runtimes`), so :func:`lru_task` decorates the user's
function with :func:`timed`: while a call of that task runs under a
:class:`~ranch_core.runtimes.RunTimer` (:class:`~ranch_celery.retries.Frame`),
the function runs through the timer; otherwise (``cost="calls"``, a plain
``.delay()``, a direct call) it is called as it is.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable

from ranch_celery.retries import frames


def timed(name: str, fun: Callable[..., Any]) -> Callable[..., Any]:
    """``fun`` (the function of the task ``name``), timed while Ranch runs a call of that task.

    The wrapper keeps ``fun``'s name, docstring, module and signature (so
    Celery's argument check of ``.delay()`` is ``fun``'s).
    """

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        stack = frames()
        if stack:
            frame = stack[-1]
            if frame.timer is not None and frame.claimed.call.options.get("task") == name:
                return frame.timer(fun, *args, **kwargs)
        return fun(*args, **kwargs)

    with contextlib.suppress(TypeError, ValueError):  # no signature to keep (some builtins)
        run.__signature__ = inspect.signature(fun)  # type: ignore[attr-defined]
    return run
