"""Publishing wake-ups (and delayed retries), routed like the user's task.

A wake-up is a small message running the internal task
:data:`WAKE_UP_TASK` with one argument, the backlog's name: "a call may be
runnable in this backlog". It is routed like the backlog's route task (the
first task that used it in this process): that task's
``queue``/``routing_key``/``exchange``/``priority``, time limits and the
``task_routes`` entries matching its name, so the workers that already
consume that queue receive it. :func:`queue_of` is the same routing applied
to any task: the name of the queue it goes to, which is also its default
backlog name.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

#: Name of the internal task a wake-up message runs.
WAKE_UP_TASK = "ranch_celery.wake_up"
#: Name wake-ups had before ranch-celery 0.2; messages under it are still consumed.
LEGACY_WAKE_UP_TASK = "ranch_celery.prioritize"
#: Name of the internal task that puts a retried call back into its backlog when its countdown is due.
RESUBMIT_TASK = "ranch_celery.resubmit"
#: Every internal task name (their log lines go to DEBUG, see :mod:`ranch_celery.logs`).
INTERNAL_TASKS = frozenset({WAKE_UP_TASK, LEGACY_WAKE_UP_TASK, RESUBMIT_TASK})

#: Options of the route task that internal messages do not copy: a wake-up must never expire
#: (its call would be stranded), and it carries no user data, so the app's serializer is fine.
_NOT_COPIED = ("expires", "serializer")


def route_options(app: Any, task_name: str) -> Tuple[Any, Dict[str, Any]]:
    """The task ``task_name`` and the routing options its messages carry."""
    task = app.tasks[task_name]
    options = {
        name: value
        for name, value in task._get_exec_options().items()
        if value is not None and name not in _NOT_COPIED
    }
    return task, options


def queue_of(app: Any, task_name: str) -> str:
    """The name of the queue ``task_name`` routes to (``task_routes``, ``queue=``, default queue)."""
    task, options = route_options(app, task_name)
    routed = app.amqp.router.route(options, task.name, [], {}, task)
    queue = routed.get("queue")
    name = getattr(queue, "name", queue)
    if not isinstance(name, str) or not name:
        return str(app.conf.task_default_queue)
    return name


def publish(
    app: Any, route_task: str, task_name: str, args: List[Any], countdown: Optional[float] = None
) -> None:
    """Send the internal message ``task_name(*args)`` routed like ``route_task``."""
    task, options = route_options(app, route_task)
    app.send_task(
        task_name,
        args=args,
        countdown=countdown,
        route_name=task.name,
        task_type=task,
        ignore_result=True,
        add_to_parent=False,
        **options,
    )
