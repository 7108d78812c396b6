"""Announcing stored calls to the result backend, as Celery's ``send_task`` does.

Before Celery publishes a task it calls ``app.backend.on_task_call(producer,
task_id)``: the Redis result backend then subscribes to the task's result
channel ahead of time, so ``AsyncResult.get()`` hears the result whenever it
is stored. Ranch stores calls instead of publishing them, and announces them
the same way, before they are stored: without it the subscription happens
only at ``get()``, and Celery 5.6's result consumer (the newest for Python
3.9) then sometimes misses a result stored meanwhile, so ``get()`` runs into
its timeout although the result is there.
"""

from __future__ import annotations

from typing import Any, Iterable

from ranch_core.calls import Call
from ranch_core.errors import BacklogFull, DuplicateTask


def ignores_result(app: Any, call: Call) -> bool:
    """Whether ``call``'s result is not stored (its task's or its own ``ignore_result``)."""
    if call.options.get("ignore_result"):
        return True
    name = call.options.get("task")
    task = app.tasks.get(name) if isinstance(name, str) else None
    return bool(getattr(task, "ignore_result", False))


def actual_ignore_result(task: Any, request: Any) -> bool:
    """``ignore_result`` in force for ``task`` run under ``request``: the
    request's own value if it set one, else the task's (Celery 5.7's
    ``get_actual_ignore_result``, which Celery 5.6 does not have)."""
    explicit = None if request is None else vars(request).get("ignore_result")
    return bool(task.ignore_result if explicit is None else explicit)


def announce(app: Any, calls: Iterable[Call], task_ids: Iterable[str]) -> None:
    """Call ``app``'s result backend's ``on_task_call`` for each call whose result is stored."""
    wanted = [task_id for call, task_id in zip(calls, task_ids) if not ignores_result(app, call)]
    if not wanted:
        return
    backend = app.backend
    with app.producer_or_acquire() as producer:
        for task_id in wanted:
            backend.on_task_call(producer, task_id)


#: Errors of a submit that stored nothing: a full key, bad or unencodable input.
REFUSED = (BacklogFull, TypeError, ValueError)


def withdraw(app: Any, task_ids: Iterable[str], refusal: BaseException) -> None:
    """Undo :func:`announce` for calls refused with ``refusal`` (one of :data:`REFUSED`:
    nothing was stored): the result backend unsubscribes from their result channels,
    which nobody will read, so a producer refused often does not pile them up. Not for
    :class:`~ranch_core.errors.DuplicateTask`: the call waiting under that id keeps its
    subscription."""
    if isinstance(refusal, DuplicateTask):
        return
    consumer = getattr(app.backend, "result_consumer", None)
    cancel = getattr(consumer, "cancel_for", None)
    if cancel is None:
        return
    for task_id in task_ids:
        try:
            cancel(task_id)
        except Exception:  # noqa: BLE001 - a backend without subscriptions, or one that is down
            return
