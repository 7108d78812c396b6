"""Capturing ``self.retry()`` of a call Ranch runs, and putting the call back into its backlog.

``Task.retry`` re-sends the call through ``apply_async`` with the same task
id and a ``retries`` option. :func:`capture_retry`, called by
``LRUTaskMixin.apply_async``, recognises the retry of the call this thread
is running and records it instead of publishing it. Once the tracer has
stored ``RETRY``, :func:`finish_retry` hands the call to the core's one
retry rule, :meth:`ranch_core.dispatcher.FairDispatcher.retry`: back to the
tail of its key's backlog now, or, with a countdown/eta, in a delayed
:data:`~ranch_celery.wakeups.RESUBMIT_TASK` message that :func:`resubmit`
puts back into the backlog when it is due.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import attrs
from ranch_core.calls import Claimed
from ranch_core.dispatcher import RetryOutcome
from ranch_core.runtimes import RunTimer

from ranch_celery.registry import RanchState

if TYPE_CHECKING:
    from ranch_celery.backlog import CeleryBacklog

logger = logging.getLogger("ranch_celery")


@attrs.frozen
class RetryRequest:
    """What a captured ``self.retry()`` asked for."""

    args: List[Any]
    kwargs: Dict[str, Any]
    retries: int
    delay: float


class Frame:
    """The call this thread is running, the retry it asked for (if any), and
    the timer of its function (``cost="runtime"``, :mod:`ranch_celery.timing`; else ``None``)."""

    __slots__ = ("claimed", "retry", "timer")

    def __init__(self, claimed: Claimed, timer: Optional[RunTimer] = None) -> None:
        self.claimed = claimed
        self.retry: Optional[RetryRequest] = None
        self.timer = timer

    @property
    def run_time(self) -> Optional[float]:
        """How long the call's function ran (seconds); ``None`` if not timed."""
        return None if self.timer is None else self.timer.seconds


_local = threading.local()


def frames() -> List[Frame]:
    """The calls this thread is running, innermost last."""
    stack: Optional[List[Frame]] = getattr(_local, "frames", None)
    if stack is None:
        stack = _local.frames = []
    return stack


def delay_of(options: Dict[str, Any], now: Optional[datetime.datetime] = None) -> float:
    """Seconds until a retry is due, from Celery's ``eta`` (datetime or ISO string) or ``countdown``."""
    eta = options.get("eta")
    if eta is not None:
        if isinstance(eta, str):
            eta = datetime.datetime.fromisoformat(eta)
        if isinstance(eta, datetime.datetime):
            if now is None:
                now = datetime.datetime.now(eta.tzinfo) if eta.tzinfo else datetime.datetime.now()
            return max(0.0, (eta - now).total_seconds())
    countdown = options.get("countdown")
    if countdown is not None:
        return max(0.0, float(countdown))
    return 0.0


def capture_retry(args: Any, kwargs: Any, task_id: Optional[str], options: Dict[str, Any]) -> bool:
    """Is this ``apply_async`` the retry of the call running in this thread?

    If so, the retry is recorded (to be put back into its backlog by
    :func:`finish_retry`) and ``True`` returned: nothing is published.
    """
    stack = frames()
    if not stack or "retries" not in options:
        return False
    frame = stack[-1]
    if task_id != frame.claimed.task_id:
        return False
    call = frame.claimed.call
    frame.retry = RetryRequest(
        args=list(call.args if args is None else args),
        kwargs=dict(call.kwargs if kwargs is None else kwargs),
        retries=int(options["retries"]),
        delay=delay_of(options),
    )
    return True


def finish_retry(
    backlog: CeleryBacklog, claimed: Claimed, retry: RetryRequest, run_time: Optional[float] = None
) -> RetryOutcome:
    """Put a retried call back through the core's retry rule (a countdown goes to the broker);
    ``run_time``: how long the run that asked for the retry took in the task's function."""
    call = attrs.evolve(claimed.call, args=retry.args, kwargs=retry.kwargs, retries=retry.retries)
    return backlog.dispatcher().retry(
        claimed, call, delay=retry.delay, defer=backlog.defer, run_time=run_time
    )


def resubmit(task: Any, backlog: str, body: Dict[str, Any]) -> Optional[str]:
    """Body of :data:`~ranch_celery.wakeups.RESUBMIT_TASK`: a delayed retry is due; the call goes
    back into its backlog (with a wake-up)."""
    return RanchState.of(task.app).backlog(backlog).dispatcher().resubmit(body)
