"""Celery's own revoke of a call that waits in a backlog: ``AsyncResult(id).revoke()``,
``app.control.revoke(id)``, ``celery control revoke id``.

Celery broadcasts a revoke to the running workers; each adds the id to
``celery.worker.state.revoked`` in its main process, and skips a message
with that id when it arrives. A Ranch call is not a message: it waits in
its backlog until a wake-up takes it, maybe in a prefork pool process that
never sees the set (it only has the ids known when it was forked). So:

- :func:`install_revoke_command` wraps the worker's ``revoke`` control
  command (once per process, in the worker's main process, from the
  bootstep): after Celery's own handling, each id is removed from the
  app's backlogs (:meth:`~ranch_core.dispatcher.FairDispatcher.revoke_call`,
  one storage step per backlog), and the result of a removed call is
  stored ``REVOKED`` (reason ``"revoked"``), whatever the pool;
- :func:`revoked_here` and :func:`skip_revoked`: a worker that takes a call
  whose id it knows as revoked (``--statedb``, a revoke that reached it
  before the call was removed) skips it as Celery's ``Request`` does: logs
  ``Discarding revoked task``, stores ``REVOKED`` and acknowledges it with
  the storage.

A revoke reaches only the workers running at that moment (as in Celery).
So the results of an ``lru_task`` (what ``lru_delay`` returns, and
``task.AsyncResult(id)``) are :func:`revocable_result_class` objects whose
``revoke()`` first removes the waiting call itself, in the calling process
(:func:`revoke_waiting`), then broadcasts as Celery does: a call revoked
that way ends ``REVOKED`` at once, with or without a worker running.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional

from celery.result import AsyncResult
from ranch_core.calls import Claimed
from ranch_core.models import Finished
from ranch_core.protocols import Controls

from ranch_celery.registry import RanchState

if TYPE_CHECKING:
    from ranch_celery.backlog import CeleryBacklog

logger = logging.getLogger("ranch_celery")

#: The reason stored with a waiting call revoked through Celery (as Celery's worker stores it).
REVOKED_REASON = "revoked"

_INSTALL_LOCK = threading.Lock()


def revoked_here(task_id: str) -> bool:
    """Whether this process knows ``task_id`` as revoked (``celery.worker.state.revoked``)."""
    from celery.worker import state as worker_state

    return task_id in worker_state.revoked


def skip_revoked(backlog: CeleryBacklog, claimed: Claimed, *, keep_token: bool = False) -> Finished:
    """Skip a taken call whose id was revoked: store ``REVOKED``, acknowledge its lease.

    Returns what the finish did, as :meth:`~ranch_core.dispatcher.FairDispatcher.finish`.
    """
    name = claimed.call.options.get("task")
    logger.info("Discarding revoked task: %s[%s]", name, claimed.task_id)
    try:
        backlog.mark_revoked(claimed.task, REVOKED_REASON)
    except Exception:
        logger.exception("ranch: could not store REVOKED for call %s", claimed.task_id)
    return backlog.dispatcher().finish(claimed, keep_token=keep_token)


def revoke_waiting(app: Any, task_ids: Iterable[str]) -> List[str]:
    """Remove the calls ``task_ids`` that wait in a backlog of ``app`` (each stored
    ``REVOKED``); return the ids removed. Backlogs whose storage has no per-key
    controls are left out; a storage that fails is logged."""
    state = RanchState.of(app)
    if not state.declarations:
        return []
    removed: List[str] = []
    wanted = [task_id for task_id in task_ids if isinstance(task_id, str) and task_id]
    for backlog in state.resolve():
        if not wanted:
            break
        try:
            dispatcher = backlog.dispatcher()
            if not isinstance(dispatcher.scheduler.storage, Controls):
                continue
            for task_id in list(wanted):
                if dispatcher.revoke_call(task_id):
                    removed.append(task_id)
                    wanted.remove(task_id)
        except Exception as exc:  # noqa: BLE001 - the worker that takes the call still skips it
            logger.warning("ranch: revoke of %s not applied to backlog %r (%r)", wanted, backlog.name, exc)
    return removed


def _ids(task_id: Any) -> List[str]:
    if isinstance(task_id, (list, tuple, set, frozenset)):
        return [str(one) for one in task_id]
    return [] if task_id is None else [str(task_id)]


def install_revoke_command() -> None:
    """Wrap the worker's ``revoke`` control command (once per process) so that a
    revoked call waiting in a backlog of the worker's app is removed at once."""
    from celery.worker.control import Panel

    with _INSTALL_LOCK:
        original = Panel.data.get("revoke")
        if original is None or getattr(original, "ranch_wrapped", False):
            return
        command = _wrap(original)
        Panel.data["revoke"] = command


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def revoke(
        state: Any, task_id: Any = None, terminate: bool = False, signal: Any = None, **kwargs: Any
    ) -> Any:
        reply = original(state, task_id, terminate, signal, **kwargs)
        app = getattr(state, "app", None)
        if app is not None:
            try:
                revoke_waiting(app, _ids(task_id))
            except Exception:
                logger.exception("ranch: revoke of %s not applied to the backlogs", task_id)
        return reply

    revoke.ranch_wrapped = True  # type: ignore[attr-defined]
    revoke.__doc__ = original.__doc__
    revoke.__wrapped__ = original  # type: ignore[attr-defined]
    return revoke


class RevocableResult(AsyncResult):  # type: ignore[misc]
    """Celery's ``AsyncResult`` of an ``lru_task`` call: ``revoke()`` also removes the call
    from the app's backlog it waits in, if any (``REVOKED`` at once, reason ``"revoked"``;
    one storage step per backlog of the app)."""

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        """Remove the call from its backlog if it waits there, then Celery's ``revoke``
        (a broadcast to the running workers, which also stop a plain message)."""
        revoke_waiting(self.app, [self.id])
        super().revoke(connection=connection, terminate=terminate, signal=signal, wait=wait, timeout=timeout)


def revocable_result_class(app: Any) -> Any:
    """``app``'s ``AsyncResult`` class with :class:`RevocableResult`'s ``revoke`` (made once per
    app; it pickles as ``app.AsyncResult``, as Celery's own per-app result class does)."""
    state = RanchState.of(app)
    cls = state.result_class
    if cls is None:
        cls = state.result_class = app.subclass_with_self(
            RevocableResult, name="AsyncResult", reverse="AsyncResult"
        )
    return cls
