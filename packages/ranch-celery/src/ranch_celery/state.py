"""Per-app Ranch state: the backlogs, their dispatchers, wake-up publishing, the lease keeper.

One :class:`RanchState` hangs off each Celery app that has an
:func:`~ranch_celery.lru_task`. It owns one :class:`BacklogBinding` per
backlog name. Dispatchers are built per process (a forked pool child gets
its own, never a copy of the parent's locks).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ranch_core import Storage, validation
from ranch_core.dispatcher import FairDispatcher
from ranch_core.errors import UnknownBacklog
from ranch_core.leases import LeaseKeeper
from ranch_core.models import ScheduledTask
from ranch_core.scheduler import FairScheduler, WeightFunction

logger = logging.getLogger("ranch_celery")

#: Name of the internal task a wake-up message runs.
PRIORITIZE_TASK = "ranch_celery.prioritize"
#: Name of the internal task that puts a retried call back into its backlog when its countdown is due.
RESUBMIT_TASK = "ranch_celery.resubmit"
#: The reason stored with a call that expired before it ran (state ``REVOKED``).
EXPIRED_REASON = "expired: not started before its ranch expiry"

#: Default lease of a running call (``app.conf.ranch_lease_seconds``).
DEFAULT_LEASE_SECONDS = 300.0

#: Options of the wrapped task that wake-up messages do not copy: a wake-up must never expire
#: (its call would be stranded), and it carries no user data, so the app's serializer is fine.
_NOT_COPIED = ("expires", "serializer")


class BacklogBinding:
    """One backlog (fairness domain) of an app: storage, weight function, wake-up routing.

    Wake-ups follow the routing of ``route_task`` (the first task that named
    this backlog): its ``queue``/``routing_key``/``exchange``/``priority``,
    time limits, and ``task_routes`` entries matching its name.
    """

    def __init__(
        self,
        state: RanchState,
        name: str,
        storage: Storage,
        weight_function: Optional[WeightFunction],
        route_task: str,
        lease_seconds: float,
    ) -> None:
        self.state = state
        self.name = name
        self.storage = storage
        self.weight_function = weight_function
        self.route_task = route_task
        self.lease_seconds = lease_seconds
        self.tasks: Set[str] = {route_task}
        self._dispatcher: Optional[FairDispatcher] = None
        self._pid = -1
        self._lock = threading.Lock()

    def dispatcher(self) -> FairDispatcher:
        """This process's :class:`~ranch_core.dispatcher.FairDispatcher` for the backlog."""
        pid = os.getpid()
        dispatcher = self._dispatcher
        if dispatcher is not None and self._pid == pid:
            return dispatcher
        with self._lock:
            if self._dispatcher is None or self._pid != pid:
                scheduler = FairScheduler(
                    self.storage, weight_function=self.weight_function, lease_seconds=self.lease_seconds
                )
                self._dispatcher = FairDispatcher(scheduler, self.wake, on_expired=self.state.mark_expired)
                self._pid = pid
            return self._dispatcher

    def wake(self) -> None:
        """Publish one wake-up message for this backlog."""
        self.state.publish(self, PRIORITIZE_TASK, [self.name])


class RanchState:
    """Everything Ranch keeps for one Celery app. Get it with :meth:`of`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.backlogs: Dict[str, BacklogBinding] = {}
        self._lock = threading.RLock()
        self._keeper: Optional[LeaseKeeper] = None
        self._keeper_pid = -1
        self._tracers: Dict[Tuple[str, str, int], Callable[..., Any]] = {}

    @classmethod
    def of(cls, app: Any) -> RanchState:
        """The app's state, created (and the worker side installed) on first use."""
        state = app.__dict__.get("_ranch_state")
        if isinstance(state, RanchState):
            return state
        with _CREATE_LOCK:
            state = app.__dict__.get("_ranch_state")
            if not isinstance(state, RanchState):
                state = cls(app)
                from ranch_celery.worker import install

                install(app)
                app.__dict__["_ranch_state"] = state
        return state

    # -- settings ------------------------------------------------------------

    def lease_seconds(self) -> float:
        """``app.conf.ranch_lease_seconds`` (default 300 s)."""
        value = self.app.conf.get("ranch_lease_seconds")
        return validation.check_lease(DEFAULT_LEASE_SECONDS if value is None else value)

    def sweep_interval(self) -> float:
        """``app.conf.ranch_sweep_interval`` (default: a third of the shortest lease, at most 60 s)."""
        value = self.app.conf.get("ranch_sweep_interval")
        if value is not None:
            return validation.check_lease(value)
        leases = [b.lease_seconds for b in self.backlogs.values()] or [self.lease_seconds()]
        return min(60.0, min(leases) / 3.0)

    # -- backlogs ------------------------------------------------------------

    def declare(
        self,
        backlog: str,
        task_name: str,
        make_storage: Callable[[], Storage],
        weight_function: Optional[WeightFunction],
        explicit_storage: bool,
    ) -> BacklogBinding:
        """Register ``task_name`` in ``backlog`` (created on first use)."""
        with self._lock:
            binding = self.backlogs.get(backlog)
            if binding is None:
                binding = BacklogBinding(
                    self, backlog, make_storage(), weight_function, task_name, self.lease_seconds()
                )
                self.backlogs[backlog] = binding
                return binding
            if weight_function is not None and weight_function is not binding.weight_function:
                raise ValueError(
                    f"backlog {backlog!r} already has a different weight_function (tasks sharing a "
                    "backlog share its weight function)"
                )
            if explicit_storage and make_storage() is not binding.storage:
                raise ValueError(f"backlog {backlog!r} already uses another storage")
            binding.tasks.add(task_name)
            return binding

    def binding(self, backlog: str) -> BacklogBinding:
        """The backlog named ``backlog``; :class:`~ranch_core.errors.UnknownBacklog` (a
        ``LookupError``) if this process never declared it."""
        binding = self.backlogs.get(backlog)
        if binding is None:
            raise UnknownBacklog(
                f"ranch: backlog {backlog!r} is not declared in this worker: import the module that "
                "defines its @lru_task (the worker must know the same tasks as the producer)"
            )
        return binding

    def dispatchers(self) -> List[FairDispatcher]:
        """This process's dispatchers, one per backlog."""
        return [binding.dispatcher() for binding in list(self.backlogs.values())]

    # -- publishing ----------------------------------------------------------

    def _route(self, binding: BacklogBinding) -> Tuple[Any, Dict[str, Any]]:
        route = self.app.tasks[binding.route_task]
        options = {
            name: value
            for name, value in route._get_exec_options().items()
            if value is not None and name not in _NOT_COPIED
        }
        return route, options

    def wake_queue(self, binding: BacklogBinding) -> Optional[str]:
        """Name of the queue ``binding``'s wake-ups are routed to."""
        route, options = self._route(binding)
        routed = self.app.amqp.router.route(options, route.name, [], {}, route)
        queue = routed.get("queue")
        name = getattr(queue, "name", queue)
        return name if isinstance(name, str) else None

    def publish(
        self, binding: BacklogBinding, task_name: str, args: List[Any], countdown: Optional[float] = None
    ) -> None:
        """Send an internal message routed like ``binding``'s task."""
        route, options = self._route(binding)
        self.app.send_task(
            task_name,
            args=args,
            countdown=countdown,
            route_name=route.name,
            task_type=route,
            ignore_result=True,
            add_to_parent=False,
            **options,
        )

    # -- worker side -----------------------------------------------------------

    def mark_expired(self, task: ScheduledTask) -> None:
        """Store ``REVOKED`` (reason :data:`EXPIRED_REASON`) for a call dropped as expired."""
        payload = task.payload if isinstance(task.payload, dict) else {}
        options = payload.get("options")
        name = options.get("task") if isinstance(options, dict) else None
        celery_task = self.app.tasks.get(name) if isinstance(name, str) else None
        if celery_task is not None and celery_task.ignore_result:
            return
        backend = celery_task.backend if celery_task is not None else self.app.backend
        backend.mark_as_revoked(task.task_id, reason=EXPIRED_REASON)

    def tracer(self, task: Any, hostname: str) -> Callable[..., Any]:
        """Celery's own worker tracer for ``task`` (results, states and signals), cached."""
        cache_key = (task.name, hostname, os.getpid())
        tracer = self._tracers.get(cache_key)
        if tracer is None:
            from celery.app.trace import build_tracer

            tracer = build_tracer(task.name, task, loader=self.app.loader, hostname=hostname, app=self.app)
            self._tracers[cache_key] = tracer
        return tracer

    def ensure_keeper(self) -> None:
        """Run a :class:`~ranch_core.leases.LeaseKeeper` in this process (started once per process)."""
        if self._keeper_pid == os.getpid():
            return
        with self._lock:
            if self._keeper_pid != os.getpid():
                self._keeper = LeaseKeeper(self.dispatchers, self.sweep_interval())
                self._keeper.start()
                self._keeper_pid = os.getpid()

    def stop_keeper(self) -> None:
        """Stop this process's lease keeper (worker shutdown)."""
        with self._lock:
            if self._keeper is not None and self._keeper_pid == os.getpid():
                self._keeper.stop(timeout=5)
            self._keeper = None
            self._keeper_pid = -1


_CREATE_LOCK = threading.Lock()
