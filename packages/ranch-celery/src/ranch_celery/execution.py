"""Running the fair choice of a wake-up through Celery's own worker tracer.

A wake-up message runs :func:`wake_up`: it asks the backlog for the fair
choice at this moment and runs that call right here, through
:func:`celery.app.trace.build_tracer`, under the call's own task id: the
result backend, task states, ``self.request``, the task signals and the
``Task ... succeeded``/``raised`` log line see the user's call, not the
wake-up. The lease is acknowledged when the call ends, or the call goes
back into its backlog for a retry (:mod:`ranch_celery.retries`). In a
backlog of ``cost="runtime"`` both charge the call the run time of the
task's own function, which :mod:`ranch_celery.timing` measures inside the
tracer, not the lease.

A wake-up carries a token id (see ranch-core's "Wake-ups"): the worker
takes the call with it, publishes the fan-out tokens, and runs it. Then,
within its *run budget* (``ranch_wakeup_budget`` calls, and no new call
once ``ranch_wakeup_budget_seconds`` have passed), it keeps the token and
takes the next call, a fresh fair choice at that moment; the last call's
finish passes the token on (re-published) while calls wait, or retires it.
A retried call, or a wake-up with a time limit (the limit covers the whole
message), ends the run after one call. A wake-up without a token (0.1's
messages) counts as a stale token. A call whose id this process knows as
revoked (Celery's revoke, :mod:`ranch_celery.revoking`) is skipped:
``REVOKED`` is stored and its lease acknowledged. A wake-up that finds
only calls of rate-limited keys keeps its token, published again with a
countdown for when the first of them may start (``CeleryBacklog.wake_later``).

If the storage cannot be reached when the wake-up runs, the wake-up (same
token) is published again with a countdown that doubles from
:data:`RETRY_FIRST_DELAY` up to the sweep interval, so a call waits at most
one sweep interval once the storage is back.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ranch_core.calls import Claimed
from ranch_core.errors import StorageUnavailable
from ranch_core.models import Finished

from ranch_celery import limits, replacing
from ranch_celery.logs import install_log_filter
from ranch_celery.registry import RanchState
from ranch_celery.retries import Frame, finish_retry, frames
from ranch_celery.revoking import revoked_here, skip_revoked
from ranch_celery.sweep import ensure_keeper

if TYPE_CHECKING:
    from ranch_celery.backlog import CeleryBacklog

logger = logging.getLogger("ranch_celery")

#: Countdown of the first re-published wake-up after a storage failure, seconds.
RETRY_FIRST_DELAY = 0.1
#: Parts of a stored call (:mod:`ranch_celery.options`) copied into ``self.request`` as Celery's
#: worker copies them from a message.
MESSAGE_PARTS = (
    "callbacks",
    "errbacks",
    "chain",
    "chord",
    "group",
    "group_index",
    "shadow",
    "ignore_result",
    "argsrepr",
    "kwargsrepr",
    "stamped_headers",
    "stamps",
    "replaced_task_nesting",
)


def wake_up(task: Any, backlog: str, token: Any = None, attempt: int = 0) -> Optional[str]:
    """Body of a wake-up message: run the fair choice of ``backlog`` now, or do nothing.

    ``token`` is the wake-up's token id; ``None`` (or, in a message from
    before tokens, the retry count in its place) is taken as a stale token.
    Returns the id of the call it ran (``None``: a no-op, or re-published).
    """
    if not isinstance(token, str):
        # Before tokens, the second argument was the retry count.
        if isinstance(token, int) and not isinstance(token, bool) and attempt == 0:
            attempt = token
        token = None
    install_log_filter()
    state = RanchState.of(task.app)
    fair = state.backlog(backlog)
    ensure_keeper(state)
    dispatcher = fair.dispatcher()
    try:
        claimed = dispatcher.take(token)
    except (StorageUnavailable, ConnectionError, TimeoutError) as exc:
        delay = min(state.sweep_interval(), RETRY_FIRST_DELAY * 2 ** min(attempt, 30))
        logger.warning(
            "ranch: storage of backlog %r is unavailable (%s); wake-up published again in %.1f s",
            backlog,
            exc,
            delay,
        )
        fair.wake(token, countdown=delay, attempt=attempt + 1)
        return None
    if claimed is None:
        return None
    calls, seconds = run_budget(state, task.request)
    started = time.monotonic()
    ran = 1
    while True:
        keep = ran < calls and time.monotonic() - started < seconds
        last = claimed.task_id
        if revoked_here(last):
            finished: Optional[Finished] = skip_revoked(fair, claimed, keep_token=keep)
        else:
            finished = run_claimed(state, fair, claimed, task.request, keep_token=keep)
        if finished is None:
            return last
        if not finished.kept:
            return last  # passed on, deferred for a rate-limited key, or retired
        try:
            # The token is still held: the next call is the fair choice now.
            following = dispatcher.take(claimed.token)
        except (StorageUnavailable, ConnectionError, TimeoutError) as exc:
            logger.warning(
                "ranch: storage of backlog %r is unavailable (%s); the sweep replaces the held wake-up",
                backlog,
                exc,
            )
            return last
        if following is None:
            return last
        claimed = following
        ran += 1


def run_budget(state: RanchState, request: Any) -> Tuple[int, float]:
    """``(calls, seconds)`` one wake-up may run: the settings, or one call under a time limit."""
    settings = state.settings()
    timelimit = getattr(request, "timelimit", None) or ()
    if any(limit is not None for limit in timelimit):
        return 1, settings.wakeup_budget_seconds
    return settings.wakeup_budget, settings.wakeup_budget_seconds


def tracer_for(state: RanchState, task: Any, hostname: str) -> Callable[..., Any]:
    """Celery's own worker tracer for ``task`` (results, states, signals, log lines), cached."""
    cache_key = ("tracer", task.name, hostname, os.getpid())
    tracer: Optional[Callable[..., Any]] = state.worker.get(cache_key)
    if tracer is None:
        from celery.app.trace import build_tracer

        tracer = build_tracer(task.name, task, loader=state.app.loader, hostname=hostname, app=state.app)
        state.worker[cache_key] = tracer
    return tracer


def request_for(backlog: CeleryBacklog, claimed: Claimed, task: Any, outer: Any) -> Dict[str, Any]:
    """The ``self.request`` of the call: its own id, arguments and headers; the wake-up's delivery."""
    call = claimed.call
    options = call.options
    delivery_info = dict(getattr(outer, "delivery_info", None) or {})
    delivery_info.pop("redelivered", None)
    request = {
        "id": claimed.task_id,
        "task": task.name,
        "args": call.args,
        "kwargs": call.kwargs,
        "retries": call.retries,
        "is_eager": False,
        "hostname": getattr(outer, "hostname", None),
        "delivery_info": delivery_info,
        "reply_to": options.get("reply_to") or getattr(outer, "reply_to", None),
        "correlation_id": claimed.task_id,
        "timelimit": options.get("timelimit") or getattr(outer, "timelimit", None),
        "headers": options.get("headers") or {},
        "root_id": options.get("root_id") or claimed.task_id,
        "parent_id": options.get("parent_id"),
        "origin": options.get("origin"),
        "lru_key": claimed.key,
        "lru_backlog": backlog.name,
    }
    # The parts of a Celery message the tracer acts on: link/link_error, the rest of a chain,
    # chord counting (group, group_index, chord), plus shadow, ignore_result, reprs, stamps.
    for name in MESSAGE_PARTS:
        if name in options:
            request[name] = options[name]
    return request


def run_claimed(
    state: RanchState, backlog: CeleryBacklog, claimed: Claimed, outer: Any, *, keep_token: bool = False
) -> Optional[Finished]:
    """Run one claimed call under its own id, then ack it or put it back (retry).

    With ``keep_token`` the wake-up's token stays held if calls wait (run
    budget). Returns what the finish did (``kept``: the caller takes the
    next call with the token), or ``None`` if the token is not the caller's
    any more: a retried call passes it on through the retry rule, and a
    finish that failed leaves it to the sweep.

    A call naming a task this worker does not have is stored as a
    ``NotRegistered`` failure, logged, and acknowledged (it would fail the
    same way on the next worker of this kind).
    """
    dispatcher = backlog.dispatcher()
    name = claimed.call.options.get("task")
    task = state.app.tasks.get(name) if isinstance(name, str) else None
    if task is None:
        from celery.exceptions import NotRegistered

        logger.error(
            "ranch: call %s (key %r, backlog %r) names task %r, which this worker does not have; "
            "stored as a NotRegistered failure",
            claimed.task_id,
            claimed.key,
            backlog.name,
            name,
        )
        state.app.backend.mark_as_failure(claimed.task_id, NotRegistered(name))
        return dispatcher.finish(claimed, keep_token=keep_token)
    tracer = tracer_for(state, task, getattr(outer, "hostname", None) or "ranch@localhost")
    frame = Frame(claimed, dispatcher.timer())
    stack = frames()
    stack.append(frame)
    try:
        with dispatcher.running(claimed), replacing.running(claimed.task_id) as replaced:
            request = request_for(backlog, claimed, task, outer)
            with limits.enforced(
                claimed.call.options.get("timelimit"),
                lambda seconds: logger.warning(
                    "Soft time limit (%ss) exceeded for %s[%s]", seconds, task.name, claimed.task_id
                ),
                lambda seconds: hard_time_limit(backlog, claimed, task, request, seconds),
            ) as outcome:
                traced = tracer(claimed.task_id, claimed.call.args, claimed.call.kwargs, request)
    finally:
        # The tracer catches the task's own exceptions; anything raised here is the tracer
        # failing (or the worker shutting down): the lease runs out and the call comes back.
        stack.pop()
    if outcome.timed_out:
        return None  # hard_time_limit stored the failure and finished the lease
    if frame.retry is not None:
        finish_retry(backlog, claimed, frame.retry, frame.run_time)
        return None
    try:
        finished = dispatcher.finish(
            claimed, keep_token=keep_token, failed=ended_in_failure(traced), run_time=frame.run_time
        )
    except Exception:
        logger.exception(
            "ranch: call %s ran but its lease could not be released; it may run again when the lease "
            "runs out",
            claimed.task_id,
        )
        return None
    store_replacements(state, claimed, replaced.deferred)
    return finished


def ended_in_failure(traced: Any) -> bool:
    """Whether Celery's tracer stored a failure (its ``trace_ok_t.info`` is a ``FAILURE`` TraceInfo)."""
    from celery import states

    info = getattr(traced, "info", None)
    return bool(getattr(info, "state", None) == states.FAILURE)


def store_replacements(state: RanchState, claimed: Claimed, deferred: List[Callable[[], object]]) -> None:
    """Store what ``Task.replace`` put under the finished call's id; a failure is stored as its result."""
    for store in deferred:
        try:
            store()
        except Exception as exc:
            logger.exception("ranch: the replacement of call %s could not be stored", claimed.task_id)
            state.app.backend.mark_as_failure(claimed.task_id, exc)


def hard_time_limit(
    backlog: CeleryBacklog, claimed: Claimed, task: Any, request: Dict[str, Any], seconds: float
) -> None:
    """A call overran its own hard limit: what Celery's worker does for a job that overruns.

    ``TimeLimitExceeded`` is stored under the call's id (errbacks and chord
    counting run, as in ``Request.on_timeout``) and the lease acknowledged;
    :mod:`ranch_celery.limits` then kills this pool process.
    """
    from celery.app.task import Context
    from celery.exceptions import TimeLimitExceeded

    from ranch_celery.results import actual_ignore_result

    logger.error("Hard time limit (%ss) exceeded for %s[%s]", seconds, task.name, claimed.task_id)
    context = Context(request)
    store = task.store_errors_even_if_ignored or not actual_ignore_result(task, context)
    task.backend.mark_as_failure(
        claimed.task_id, TimeLimitExceeded(seconds), request=context, store_result=store
    )
    backlog.dispatcher().finish(claimed)
