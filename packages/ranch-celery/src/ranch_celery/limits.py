"""Per-call time limits (``time_limit=``/``soft_time_limit=``) of a call Ranch runs.

Celery's pool enforces the limits of the *message* it runs; for Ranch that
message is the wake-up, sent before any call was chosen, so it carries the
worker-side limit of the backlog's task (``@task(time_limit=...)``,
``task_time_limit``), never a call's own. A call's own limits are
therefore enforced by the pool process that runs it, where Celery's
prefork pool enforces limits:

* soft limit: a ``SIGALRM`` timer raises
  :class:`~celery.exceptions.SoftTimeLimitExceeded` inside the task, as
  the prefork pool's ``SIGUSR1`` does;
* hard limit: a watchdog thread does what the prefork pool's parent does
  when a job overruns: stores ``TimeLimitExceeded`` under the call's id
  (errbacks and chord counting included), acknowledges the call's lease
  (passing its wake-up on), and kills the pool process (``SIGKILL``); the
  pool starts a new one.

Both in the main thread of a prefork pool process (known by
``worker_process_init`` in a process the prefork initializer set up). On
the ``gevent`` pool, Celery enforces a message's hard limit with a
``gevent.Timeout`` around the job and no soft limit; so does Ranch for a
call's own hard limit: the timeout raises in the call's greenlet,
``TimeLimitExceeded`` is stored and the lease acknowledged, and the worker
goes on (no process to kill). The ``solo`` and ``threads`` pools enforce no
time limits in Celery either (there, a per-call limit is stored in
``self.request.timelimit`` and not enforced); ``eventlet`` is not covered.
A per-call limit can shorten the worker-side limit, not extend it: the pool
still ends the wake-up message at its own limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init

logger = logging.getLogger("ranch_celery")

_pool_process = {"prefork": False}


def _mark_pool_process(**_kwargs: Any) -> None:
    # The solo pool sends worker_process_init too (Celery 5.5+), in the worker's own process:
    # only a prefork child has had its hostname set by the prefork process initializer.
    # Celery 5.6 (the newest for Python 3.9) has no _process_hostname: billiard names its
    # pool children ForkPoolWorker-<n> there too.
    from billiard.process import current_process  # type: ignore[import-untyped]

    prefork = sys.modules.get("celery.concurrency.prefork")
    _pool_process["prefork"] = getattr(prefork, "_process_hostname", None) is not None or str(
        current_process().name
    ).startswith("ForkPoolWorker")


worker_process_init.connect(_mark_pool_process, weak=False)


def enforceable() -> bool:
    """Whether per-call limits are enforced here: the main thread of a prefork pool process."""
    return (
        _pool_process["prefork"]
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )


def call_limits(timelimit: Any) -> Tuple[Optional[float], Optional[float]]:
    """``(hard, soft)`` from a stored ``timelimit`` (``[hard, soft]``), each ``None`` if unset."""
    if not isinstance(timelimit, Sequence) or isinstance(timelimit, (str, bytes)) or len(timelimit) != 2:
        return None, None
    hard, soft = timelimit
    return _seconds(hard), _seconds(soft)


def _seconds(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


class HardLimit:
    """The watchdog of one call's hard limit; :meth:`disarm` when the call ends in time."""

    def __init__(self, seconds: float, on_timeout: Callable[[float], None]) -> None:
        self.seconds = seconds
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "ranch-hard-time-limit"

    def start(self) -> None:
        """Start the watchdog."""
        self._timer.start()

    def disarm(self) -> None:
        """The call ended: the watchdog does nothing (it waits if it is firing: the process ends)."""
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            try:
                self._on_timeout(self.seconds)
            except Exception:
                logger.exception("ranch: storing the hard time limit of a call failed")
            finally:
                os.kill(os.getpid(), signal.SIGKILL)


class Outcome:
    """What :func:`enforced` saw: ``timed_out`` once a green hard limit ended the call."""

    def __init__(self) -> None:
        self.timed_out = False


def green_timeout() -> Optional[Any]:
    """``gevent.Timeout`` when this worker runs Celery's gevent pool, else ``None``."""
    if "celery.concurrency.gevent" not in sys.modules:
        return None
    import gevent

    return gevent.Timeout


@contextlib.contextmanager
def enforced(
    timelimit: Any, on_soft: Callable[[float], None], on_hard: Callable[[float], None]
) -> Iterator[Outcome]:
    """Enforce a call's own ``[hard, soft]`` limits around its run, where :func:`enforceable`
    (and its hard limit on the gevent pool, :func:`green_timeout`)."""
    outcome = Outcome()
    hard, soft = call_limits(timelimit)
    timeout = None if hard is None else green_timeout()
    if hard is not None and timeout is not None:
        with _green(timeout, hard, on_hard, outcome):
            yield outcome
        return
    if (hard is None and soft is None) or not enforceable():
        yield outcome
        return
    previous: Any = None
    if soft is not None:

        def raise_soft(_signum: int, _frame: Any) -> None:
            on_soft(soft)
            raise SoftTimeLimitExceeded(soft)

        previous = signal.signal(signal.SIGALRM, raise_soft)
        signal.setitimer(signal.ITIMER_REAL, soft)
    watchdog = None
    if hard is not None:
        watchdog = HardLimit(hard, on_hard)
        watchdog.start()
    try:
        yield outcome
    finally:
        if watchdog is not None:
            watchdog.disarm()
        if soft is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _green(
    timeout_class: Any, hard: float, on_hard: Callable[[float], None], outcome: Outcome
) -> Iterator[None]:
    """A green ``Timeout`` of ``hard`` seconds around the call; when it fires, ``on_hard``
    (the tracer lets a ``Timeout``, a ``BaseException``, through to here)."""
    timer = timeout_class(hard)
    timer.start()
    try:
        yield
    except BaseException as exc:
        if exc is not timer:
            raise
        outcome.timed_out = True
        on_hard(hard)
    finally:
        timer.cancel()
