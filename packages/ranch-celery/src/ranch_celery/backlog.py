"""``CeleryBacklog``: one fairness domain of a Celery app, as this process sees it.

It holds the backlog's storage (resolved at first use, see
:mod:`ranch_celery.storage`), its weight function, the task whose routing
its wake-ups follow, and this process's
:class:`~ranch_core.dispatcher.FairDispatcher` (built per process: a forked
pool child gets its own, never a copy of the parent's locks).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

from ranch_core import Storage
from ranch_core.backlogs import BacklogSettings
from ranch_core.dispatcher import FairDispatcher
from ranch_core.forks import ProcessLock
from ranch_core.models import ScheduledTask
from ranch_core.scheduler import FairScheduler, WeightFunction
from ranch_core.serializers import Serializer

from ranch_celery import wakeups
from ranch_celery.config import Settings
from ranch_celery.storage import resolve_storage

#: The reason stored with a call that expired before it ran (state ``REVOKED``).
EXPIRED_REASON = "expired: not started before its ranch expiry"
#: Parts of a stored call's options the result backend reads when it stores a revoked call.
_REVOKE_PARTS = ("chord", "group", "group_index", "ignore_result", "root_id", "parent_id", "reply_to")


class CeleryBacklog:
    """The backlog ``name`` of ``app``: the calls of the tasks that route to it.

    ``queue`` is the queue its wake-ups travel on; ``route_task`` the task
    whose routing they copy (the first task of the backlog used here).
    """

    def __init__(
        self,
        app: Any,
        name: str,
        queue: str,
        route_task: str,
        explicit_storage: Optional[Storage],
        weight_function: Optional[WeightFunction],
        settings: Callable[[], Settings],
        *,
        options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.app = app
        self.name = name
        self.queue = queue
        self.route_task = route_task
        self.explicit_storage = explicit_storage
        self.weight_function = weight_function
        #: Per-backlog ``lru_task`` arguments (``max_wakeups``, ``default_concurrency_limit``,
        #: ``default_rate_limit``) given by a task of this backlog; absent or ``None``: the app's setting.
        self.explicit_options: Dict[str, Any] = dict(options or {})
        self.tasks: Set[str] = {route_task}
        self._settings = settings
        self._storage: Optional[Storage] = explicit_storage
        self._dispatcher: Optional[FairDispatcher] = None
        self._pid = -1
        self._lock = ProcessLock()
        self._slots = (0, -1)  # (worker slots, pid of the process they belong to)

    def declared(self) -> BacklogSettings:
        """What the backlog was declared with, for :func:`ranch_core.backlogs.check_join`."""
        return BacklogSettings(
            name=self.name,
            queue=self.queue,
            storage=self.explicit_storage,
            weight_function=self.weight_function,
        )

    @property
    def storage(self) -> Storage:
        """The backlog's storage, resolved on first use (``StorageNotConfigured`` if there is none)."""
        storage = self._storage
        if storage is None:
            with self._lock:
                if self._storage is None:
                    self._storage = resolve_storage(self.app, self.name, None, self._settings())
                storage = self._storage
        return storage

    @property
    def serializer(self) -> Optional[Serializer]:
        """The serializer the storage encodes calls with, if it says."""
        serializer = getattr(self.storage, "serializer", None)
        if serializer is None:
            serializer = getattr(self.storage, "_serializer", None)
        return serializer if isinstance(serializer, Serializer) else None

    @property
    def lease_seconds(self) -> float:
        """Lease of a running call (the ``lease_seconds`` setting)."""
        return self._settings().lease_seconds

    @property
    def explicit_max_wakeups(self) -> Optional[int]:
        """``lru_task(..., max_wakeups=)`` of a task of this backlog (``None``: the app's setting)."""
        value: Optional[int] = self.explicit_options.get("max_wakeups")
        return value

    @property
    def max_wakeups(self) -> int:
        """Bound on outstanding wake-ups: ``lru_task(..., max_wakeups=)``, else ``ranch_max_wakeups``."""
        if self.explicit_max_wakeups is not None:
            return self.explicit_max_wakeups
        return self._settings().max_wakeups

    @property
    def default_concurrency_limit(self) -> Optional[int]:
        """Concurrency limit of the keys without their own: ``lru_task(...,
        default_concurrency_limit=)``, else ``ranch_default_concurrency_limit`` (``None``: no cap)."""
        value: Optional[int] = self.explicit_options.get("default_concurrency_limit")
        return self._settings().default_concurrency_limit if value is None else value

    @property
    def default_rate_limit(self) -> Optional[str]:
        """Rate limit of the keys without their own: ``lru_task(..., default_rate_limit=)``,
        else ``ranch_default_rate_limit`` (``None``: no limit)."""
        value: Optional[str] = self.explicit_options.get("default_rate_limit")
        return self._settings().default_rate_limit if value is None else value

    @property
    def cost(self) -> str:
        """What a dispatch costs its key: ``lru_task(..., cost=)``, else ``"calls"``."""
        value: Optional[str] = self.explicit_options.get("cost")
        return "calls" if value is None else value

    @property
    def token_ttl(self) -> float:
        """How long a wake-up may travel before a sweep replaces it: the sweep interval."""
        settings = self._settings()
        return settings.sweep_interval or min(self.lease_seconds / 3, 60.0)

    def dispatcher(self) -> FairDispatcher:
        """This process's :class:`~ranch_core.dispatcher.FairDispatcher` for the backlog."""
        pid = os.getpid()
        dispatcher = self._dispatcher
        if dispatcher is not None and self._pid == pid:
            return dispatcher
        storage = self.storage
        with self._lock:
            if self._dispatcher is None or self._pid != pid:
                # Defaults of the per-key controls are written to the storage here, once per process.
                scheduler = FairScheduler(
                    storage,
                    weight_function=self.weight_function,
                    lease_seconds=self.lease_seconds,
                    default_concurrency_limit=self.default_concurrency_limit,
                    default_rate_limit=self.default_rate_limit,
                    cost=self.cost,
                )
                self._dispatcher = FairDispatcher(
                    scheduler,
                    self.wake,
                    on_expired=self.mark_expired,
                    max_wakeups=self.max_wakeups,
                    token_ttl=self.token_ttl,
                    wake_later=self.wake_later,
                    on_revoked=self.mark_revoked,
                )
                self._apply_slots(self._dispatcher)
                self._pid = pid
            return self._dispatcher

    def set_slots(self, slots: int) -> None:
        """This process is a worker running ``slots`` calls at once (its pool's concurrency).

        Its dispatcher registers them at each sweep, so the backlog's
        effective ``max_wakeups`` grows to the fleet's live slots. Only this
        process: a forked pool child starts again from 0 (its parent counts).
        """
        self._slots = (slots, os.getpid())
        dispatcher = self._dispatcher
        if dispatcher is not None and self._pid == os.getpid():
            self._apply_slots(dispatcher)

    def _apply_slots(self, dispatcher: FairDispatcher) -> None:
        slots, pid = self._slots
        if pid == os.getpid() and hasattr(dispatcher, "slots"):
            dispatcher.slots = slots  # ranch-core's slot registration (issue 10)

    def wake(self, token: Optional[str] = None, countdown: Optional[float] = None, attempt: int = 0) -> None:
        """Publish one wake-up message for this backlog, carrying ``token``
        (``None``: a tokenless nudge, taken as a stale token)."""
        args: List[Any] = [self.name, token] if attempt == 0 else [self.name, token, attempt]
        wakeups.publish(self.app, self.route_task, wakeups.WAKE_UP_TASK, args, countdown=countdown)

    def wake_later(self, token: str, seconds: float) -> None:
        """Publish wake-up ``token`` to be delivered in ``seconds`` (Celery ``countdown``): the
        backlog's calls wait only for a rate limit's bucket to refill, and the token comes back then."""
        self.wake(token, countdown=seconds)

    def defer(self, body: Dict[str, Any], delay: float) -> None:
        """Publish a delayed retry (``FairDispatcher.deferred``) due in ``delay`` seconds."""
        wakeups.publish(self.app, self.route_task, wakeups.RESUBMIT_TASK, [self.name, body], countdown=delay)

    def mark_expired(self, task: ScheduledTask) -> None:
        """Store ``REVOKED`` (reason :data:`EXPIRED_REASON`) for a call dropped as expired."""
        self.mark_revoked(task, EXPIRED_REASON)

    def mark_revoked(self, task: ScheduledTask, reason: str) -> None:
        """Store ``REVOKED`` with ``reason`` for a call that will never run: expired
        (:data:`EXPIRED_REASON`), purged (``"purged"``) or revoked (``"revoked"``).

        As Celery's worker does for a revoked or expired message, a call that
        is part of a chord counts as a finished (revoked) part of it, and a
        call whose result is ignored stores nothing.
        """
        from celery.app.task import Context

        from ranch_celery.results import actual_ignore_result

        payload = task.payload if isinstance(task.payload, dict) else {}
        options = payload.get("options")
        options = options if isinstance(options, dict) else {}
        name = options.get("task")
        celery_task = self.app.tasks.get(name) if isinstance(name, str) else None
        request = Context(
            {part: options[part] for part in _REVOKE_PARTS if part in options},
            id=task.task_id,
            task=name,
        )
        ignored = celery_task is not None and actual_ignore_result(celery_task, request)
        if ignored and not request.chord:
            return
        backend = celery_task.backend if celery_task is not None else self.app.backend
        backend.mark_as_revoked(task.task_id, reason=reason, request=request, store_result=not ignored)

    def __repr__(self) -> str:
        return f"CeleryBacklog({self.name!r}, queue={self.queue!r}, tasks={sorted(self.tasks)!r})"
