"""The worker side: wake-up messages, running the chosen call, retries, the lease-keeper bootstep.

A wake-up message runs the internal task ``ranch_celery.prioritize``
(:func:`prioritize`). It asks the backlog for the fair choice at this moment
and runs that call right here, through Celery's own worker tracer
(:func:`celery.app.trace.build_tracer`), under the call's own task id: the
result backend, task states, ``self.request`` and the task signals see the
user's call, not the wake-up. The lease is acknowledged when the call ends.

``self.retry()`` inside such a call does not publish a message: the retry is
captured (:func:`capture_retry`) and, once the tracer has stored ``RETRY``,
the call goes back to the tail of its key's backlog. A countdown/eta is
honoured by a delayed ``ranch_celery.resubmit`` message that pushes the call
back into the backlog when it is due.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any, Dict, List, Optional

import attrs
from celery import bootsteps
from ranch_core.calls import Claimed
from ranch_core.dispatcher import FairDispatcher

from ranch_celery.state import PRIORITIZE_TASK, RESUBMIT_TASK, BacklogBinding, RanchState

logger = logging.getLogger("ranch_celery")


@attrs.frozen
class RetryRequest:
    """What a captured ``self.retry()`` asked for."""

    args: List[Any]
    kwargs: Dict[str, Any]
    retries: int
    delay: float


class Frame:
    """The call this thread is running, and the retry it asked for (if any)."""

    __slots__ = ("claimed", "retry")

    def __init__(self, claimed: Claimed) -> None:
        self.claimed = claimed
        self.retry: Optional[RetryRequest] = None


_local = threading.local()


def _frames() -> List[Frame]:
    frames: Optional[List[Frame]] = getattr(_local, "frames", None)
    if frames is None:
        frames = _local.frames = []
    return frames


def _delay_of(options: Dict[str, Any]) -> float:
    countdown = options.get("countdown")
    eta = options.get("eta")
    if eta is not None:
        if isinstance(eta, str):
            eta = datetime.datetime.fromisoformat(eta)
        if isinstance(eta, datetime.datetime):
            now = datetime.datetime.now(eta.tzinfo) if eta.tzinfo else datetime.datetime.now()
            return max(0.0, (eta - now).total_seconds())
    if countdown is not None:
        return max(0.0, float(countdown))
    return 0.0


def capture_retry(args: Any, kwargs: Any, task_id: Optional[str], options: Dict[str, Any]) -> bool:
    """Called by ``LRUTask.apply_async``: is this the retry of the call running here?

    ``Task.retry`` re-sends the call through ``apply_async`` with the same
    task id and a ``retries`` option. If that is the call this thread runs,
    the retry is recorded (to be put back into its backlog) and ``True``
    returned: nothing is published.
    """
    frames = _frames()
    if not frames or "retries" not in options:
        return False
    frame = frames[-1]
    if task_id != frame.claimed.task_id:
        return False
    call = frame.claimed.call
    frame.retry = RetryRequest(
        args=list(call.args if args is None else args),
        kwargs=dict(call.kwargs if kwargs is None else kwargs),
        retries=int(options["retries"]),
        delay=_delay_of(options),
    )
    return True


def _request_for(binding: BacklogBinding, claimed: Claimed, task: Any, outer: Any) -> Dict[str, Any]:
    call = claimed.call
    delivery_info = dict(getattr(outer, "delivery_info", None) or {})
    delivery_info.pop("redelivered", None)
    request: Dict[str, Any] = {
        "id": claimed.task_id,
        "task": task.name,
        "args": call.args,
        "kwargs": call.kwargs,
        "retries": call.retries,
        "is_eager": False,
        "hostname": getattr(outer, "hostname", None),
        "delivery_info": delivery_info,
        "reply_to": getattr(outer, "reply_to", None),
        "correlation_id": claimed.task_id,
        "timelimit": getattr(outer, "timelimit", None),
        "headers": call.options.get("headers") or {},
        "root_id": call.options.get("root_id") or claimed.task_id,
        "parent_id": call.options.get("parent_id"),
        "origin": call.options.get("origin"),
        "lru_key": claimed.key,
        "lru_backlog": binding.name,
    }
    return request


def run_claimed(state: RanchState, binding: BacklogBinding, claimed: Claimed, outer: Any) -> None:
    """Run one claimed call under its own id, then ack it or put it back (retry)."""
    dispatcher = binding.dispatcher()
    name = claimed.call.options.get("task")
    task = state.app.tasks.get(name) if isinstance(name, str) else None
    if task is None:
        from celery.exceptions import NotRegistered

        logger.error("ranch: call %s names unknown task %r; marked failed", claimed.task_id, name)
        state.app.backend.mark_as_failure(claimed.task_id, NotRegistered(name))
        dispatcher.finish(claimed)
        return
    hostname = getattr(outer, "hostname", None) or "ranch@localhost"
    tracer = state.tracer(task, hostname)
    frame = Frame(claimed)
    frames = _frames()
    frames.append(frame)
    try:
        with dispatcher.running(claimed):
            tracer(
                claimed.task_id,
                claimed.call.args,
                claimed.call.kwargs,
                _request_for(binding, claimed, task, outer),
            )
    except BaseException:
        # The tracer catches the task's own exceptions; this is the tracer failing
        # (or the worker shutting down): the lease runs out and the call comes back.
        frames.pop()
        raise
    frames.pop()
    if frame.retry is None:
        dispatcher.finish(claimed)
    else:
        _requeue(state, binding, dispatcher, claimed, frame.retry)


def _requeue(
    state: RanchState,
    binding: BacklogBinding,
    dispatcher: FairDispatcher,
    claimed: Claimed,
    retry: RetryRequest,
) -> None:
    call = attrs.evolve(claimed.call, args=retry.args, kwargs=retry.kwargs, retries=retry.retries)
    if retry.delay > 0:
        body = dispatcher.deferred(claimed, call)
        try:
            state.publish(binding, RESUBMIT_TASK, [binding.name, body], countdown=retry.delay)
        except Exception:
            logger.exception(
                "ranch: could not publish the delayed retry of %s; retrying now", claimed.task_id
            )
        else:
            dispatcher.finish(claimed)
            return
    try:
        dispatcher.requeue(Claimed(claimed.task, call), retries=retry.retries)
    except Exception as exc:
        # Like Celery when it cannot send a retry: the call fails, where the producer looks.
        logger.exception("ranch: could not put call %s back for its retry", claimed.task_id)
        task = state.app.tasks.get(call.options.get("task"))
        backend = task.backend if task is not None else state.app.backend
        backend.mark_as_failure(claimed.task_id, exc)


def prioritize(self: Any, backlog: str) -> Optional[str]:
    """Body of a wake-up message: run the fair choice of ``backlog`` now, or do nothing."""
    state = RanchState.of(self.app)
    binding = state.binding(backlog)
    state.ensure_keeper()
    claimed = binding.dispatcher().take()
    if claimed is None:
        return None
    run_claimed(state, binding, claimed, self.request)
    return claimed.task_id


def resubmit(self: Any, backlog: str, body: Dict[str, Any]) -> Optional[str]:
    """Body of a delayed retry that is due: the call goes back into its backlog (with a wake-up)."""
    state = RanchState.of(self.app)
    return state.binding(backlog).dispatcher().resubmit(body)


class IdleRefill:
    """Main-process thread: re-announce calls that wait while this worker sits idle.

    Every stored call has one wake-up message, but a wake-up can be held
    somewhere it will not run soon: prefetched by a worker that was then
    killed (the broker redelivers it only after its visibility timeout), or
    reserved by a busy worker. When this worker has reserved nothing for two
    checks in a row while calls of a backlog it consumes are waiting, it
    publishes ``min(waiting, concurrency)`` extra wake-ups. Surplus wake-ups
    find nothing to do later (cheap no-ops); a call never runs twice.
    """

    #: Idle checks in a row before wake-ups are published.
    PATIENCE = 2

    def __init__(self, state: RanchState, concurrency: int, interval: float) -> None:
        self.state = state
        self.concurrency = max(1, concurrency)
        self.interval = interval
        self._idle: Dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ranch-idle-refill", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                logger.exception("ranch: idle refill check failed")

    def check(self) -> int:
        """One check; returns the number of wake-ups published."""
        from celery.worker import state as worker_state

        busy = bool(worker_state.reserved_requests)
        consumed = set(self.state.app.amqp.queues.consume_from)
        published = 0
        for binding in list(self.state.backlogs.values()):
            waiting = 0 if busy else binding.storage.waiting()
            if waiting <= 0 or self.state.wake_queue(binding) not in consumed:
                self._idle[binding.name] = 0
                continue
            self._idle[binding.name] = self._idle.get(binding.name, 0) + 1
            if self._idle[binding.name] >= self.PATIENCE:
                self._idle[binding.name] = 0
                count = min(waiting, self.concurrency)
                logger.info(
                    "ranch: %d calls of %r wait while this worker idles; publishing %d wake-ups",
                    waiting,
                    binding.name,
                    count,
                )
                for _ in range(count):
                    binding.wake()
                published += count
        return published


class LeaseKeeperStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: sweep leases in the worker's main process, and run :class:`IdleRefill`.

    Puts back (and re-announces) the calls of workers that died, even when
    no new call arrives. Pool processes that run calls start their own
    keeper on first use, which also renews the leases of their running calls.
    """

    label = "ranch lease keeper"
    refill: Optional[IdleRefill] = None

    def start(self, parent: Any) -> None:
        state = RanchState.of(parent.app)
        state.ensure_keeper()
        self.refill = IdleRefill(state, int(getattr(parent, "concurrency", 1) or 1), state.sweep_interval())
        self.refill.start()

    def stop(self, parent: Any) -> None:
        if self.refill is not None:
            self.refill.stop()
            self.refill = None
        RanchState.of(parent.app).stop_keeper()

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)


def install(app: Any) -> None:
    """Register the internal tasks and the bootstep on ``app`` (once per app)."""
    app.task(name=PRIORITIZE_TASK, bind=True, ignore_result=True, acks_late=True, shared=False)(prioritize)
    app.task(name=RESUBMIT_TASK, bind=True, ignore_result=True, acks_late=True, shared=False)(resubmit)
    app.steps["worker"].add(LeaseKeeperStep)
