"""``RanchState``: the registry of one Celery app's fair tasks and backlogs.

Only a registry: installing the worker side is :mod:`ranch_celery.app`'s
job. ``@lru_task`` *declares* a task here (its explicit ``backlog=``,
``storage=`` and ``weight_function``, nothing read from the app's
configuration). At first use the declarations are *resolved* against the
app's final configuration: each task's backlog is its ``backlog=`` or the
name of the queue it routes to, and tasks naming one backlog join one
:class:`~ranch_celery.backlog.CeleryBacklog` under the core's rules
(:func:`ranch_core.backlogs.check_join`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import attrs
from ranch_core import Storage
from ranch_core.backlogs import BacklogSettings, check_join, check_storage_unshared
from ranch_core.dispatcher import FairDispatcher
from ranch_core.errors import BacklogConflict, UnknownBacklog
from ranch_core.forks import ProcessLock
from ranch_core.scheduler import WeightFunction

from ranch_celery import wakeups
from ranch_celery.backlog import CeleryBacklog
from ranch_celery.config import Settings, read_settings

logger = logging.getLogger("ranch_celery")


@attrs.frozen
class Declaration:
    """What ``@lru_task`` said about one task (``backlog=None``: the queue it routes to)."""

    task: str
    backlog: Optional[str]
    storage: Optional[Storage]
    weight_function: Optional[WeightFunction]
    max_wakeups: Optional[int] = None
    default_concurrency_limit: Optional[int] = None
    default_rate_limit: Optional[str] = None
    cost: Optional[str] = None

    def backlog_options(self) -> Dict[str, Any]:
        """The per-backlog options this task gives (``None``: left to the backlog or the app)."""
        return {name: getattr(self, name) for name in BACKLOG_OPTIONS}


#: ``lru_task`` arguments that belong to the whole backlog: tasks sharing one must agree.
BACKLOG_OPTIONS = ("max_wakeups", "default_concurrency_limit", "default_rate_limit", "cost")


def check_backlog_options(
    backlog: str, existing: Mapping[str, Any], joining: Mapping[str, Any], who: str
) -> None:
    """Refuse a task that gives backlog ``backlog`` another value of a per-backlog option
    (:data:`BACKLOG_OPTIONS`) than it has; a task that leaves one out joins with the backlog's."""
    for option in BACKLOG_OPTIONS:
        have, want = existing.get(option), joining.get(option)
        if have is not None and want is not None and have != want:
            raise BacklogConflict(
                f"{who} names backlog {backlog!r} with {option}={want!r}, but the backlog has "
                f"{option}={have!r}: tasks sharing a backlog share it; pass it only once"
            )


class RanchState:
    """Everything Ranch keeps for one Celery app. Get it with :meth:`of`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.declarations: Dict[str, Declaration] = {}
        self.backlogs: Dict[str, CeleryBacklog] = {}
        self.task_backlogs: Dict[str, str] = {}
        self.config: Dict[str, Any] = {}
        #: Per-process scratch space of the worker side (tracers, the lease keeper).
        self.worker: Dict[Any, Any] = {}
        self.installed = False
        #: The app's result class of lru_task calls (``ranch_celery.revoking.revocable_result_class``).
        self.result_class: Any = None
        self._settings: Optional[Settings] = None
        self.lock = ProcessLock(threading.RLock)

    @classmethod
    def of(cls, app: Any) -> RanchState:
        """The app's registry (created empty on first use)."""
        state = app.__dict__.get("_ranch_state")
        if isinstance(state, RanchState):
            return state
        with _CREATE_LOCK:
            state = app.__dict__.get("_ranch_state")
            if not isinstance(state, RanchState):
                state = cls(app)
                app.__dict__["_ranch_state"] = state
        return state

    # -- settings ------------------------------------------------------------

    def add_config(self, config: Mapping[str, Any]) -> None:
        """Merge checked ``lru_task(config=...)`` settings (app-wide); a contradiction is a ``ValueError``."""
        with self.lock:
            for key, value in config.items():
                if key in self.config and self.config[key] != value:
                    raise ValueError(
                        f"ranch setting {key!r} is already {self.config[key]!r} for this app "
                        f"(config= applies to the whole app): not {value!r}"
                    )
            self.config.update(config)
            self._settings = None

    def settings(self) -> Settings:
        """The app's Ranch settings, read once from its final configuration."""
        settings = self._settings
        if settings is None:
            with self.lock:
                if self._settings is None:
                    self._settings = read_settings(self.app, self.config)
                settings = self._settings
        return settings

    def sweep_interval(self) -> float:
        """The ``sweep_interval`` setting (default: a third of the shortest lease, at most 60 s)."""
        settings = self.settings()
        if settings.sweep_interval is not None:
            return settings.sweep_interval
        return min(60.0, settings.lease_seconds / 3.0)

    # -- declaring -------------------------------------------------------------

    def declare(self, declaration: Declaration) -> None:
        """Register a task; refuse what contradicts another task naming the same ``backlog=``."""
        with self.lock:
            if declaration.backlog is not None:
                joining = BacklogSettings(
                    declaration.backlog,
                    storage=declaration.storage,
                    weight_function=declaration.weight_function,
                )
                for other in self.declarations.values():
                    if other.backlog == declaration.backlog and other.task != declaration.task:
                        existing = BacklogSettings(
                            other.backlog, storage=other.storage, weight_function=other.weight_function
                        )
                        check_join(existing, joining, who=f"task {declaration.task!r}")
                        check_backlog_options(
                            other.backlog,
                            other.backlog_options(),
                            declaration.backlog_options(),
                            f"task {declaration.task!r}",
                        )
            if declaration.storage is not None:
                others = [
                    (other.backlog or other.task, other.storage)
                    for other in self.declarations.values()
                    if other.task != declaration.task
                    and (declaration.backlog is None or other.backlog != declaration.backlog)
                ]
                check_storage_unshared(declaration.backlog or declaration.task, declaration.storage, others)
            self.declarations[declaration.task] = declaration
            self.task_backlogs.pop(declaration.task, None)

    # -- resolving -------------------------------------------------------------

    def backlog_of(self, task_name: str) -> CeleryBacklog:
        """The backlog ``task_name`` belongs to, resolved now if needed."""
        name = self.task_backlogs.get(task_name)
        if name is None:
            with self.lock:
                self.resolve()
                name = self.task_backlogs.get(task_name)
                if name is None:
                    raise UnknownBacklog(f"ranch: task {task_name!r} is not an lru_task of this app")
        return self.backlogs[name]

    def backlog(self, name: str) -> CeleryBacklog:
        """The backlog named ``name``; :class:`~ranch_core.errors.UnknownBacklog` (a
        ``LookupError``) if no task of this process belongs to it."""
        backlog = self.backlogs.get(name)
        if backlog is None:
            with self.lock:
                self.resolve()
                backlog = self.backlogs.get(name)
            if backlog is None:
                raise UnknownBacklog(
                    f"ranch: backlog {name!r} is not declared in this worker: import the module that "
                    "defines its @lru_task (the worker must know the same tasks as the producer)"
                )
        return backlog

    def backlog_for_queue(self, queue: str) -> CeleryBacklog:
        """The backlog a call sent with ``queue=queue`` joins: the fair order of that queue.

        That is the backlog named after the queue whose wake-ups travel on it
        (the default backlog of the tasks routed there); ``ValueError`` if
        no task of this app makes one (its workers would know no backlog).
        """
        with self.lock:
            self.resolve()
            backlog = self.backlogs.get(queue)
            if backlog is not None and backlog.queue == queue:
                return backlog
            fair = sorted(b.queue for b in self.backlogs.values() if b.name == b.queue)
        raise ValueError(
            f"queue={queue!r}: no fair backlog of this app waits on that queue (backlogs named after "
            f"their queue: {', '.join(fair) or 'none'}); route an lru_task there, or leave queue= out"
        )

    def resolve(self) -> List[CeleryBacklog]:
        """Resolve every declared task to its backlog (on the app's final configuration)."""
        with self.lock:
            pending = [d for d in self.declarations.values() if d.task not in self.task_backlogs]
            # Tasks that bring a storage or weight function declare their backlog first;
            # the others join it (a joiner may leave both unset).
            pending.sort(
                key=lambda d: (
                    d.storage is None
                    and d.weight_function is None
                    and all(value is None for value in d.backlog_options().values())
                )
            )
            for declaration in pending:
                self._resolve_one(declaration)
            return list(self.backlogs.values())

    def _resolve_one(self, declaration: Declaration) -> None:
        queue = wakeups.queue_of(self.app, declaration.task)
        name = declaration.backlog or queue
        backlog = self.backlogs.get(name)
        if backlog is None:
            if declaration.storage is not None:
                others = [(b.name, b.explicit_storage) for b in self.backlogs.values()]
                check_storage_unshared(name, declaration.storage, others)
            backlog = CeleryBacklog(
                self.app,
                name,
                queue,
                declaration.task,
                declaration.storage,
                declaration.weight_function,
                self.settings,
                options=declaration.backlog_options(),
            )
            self.backlogs[name] = backlog
        else:
            joining = BacklogSettings(name, queue, declaration.storage, declaration.weight_function)
            try:
                check_join(backlog.declared(), joining, who=f"task {declaration.task!r}")
                check_backlog_options(
                    name,
                    backlog.explicit_options,
                    declaration.backlog_options(),
                    f"task {declaration.task!r}",
                )
            except BacklogConflict as exc:
                raise BacklogConflict(
                    f"{exc} (tasks routed to one queue share one backlog by default; give one of "
                    "them its own with lru_task(..., backlog=...))"
                ) from None
            backlog.tasks.add(declaration.task)
            for option, value in declaration.backlog_options().items():
                if value is not None and backlog.explicit_options.get(option) is None:
                    backlog.explicit_options[option] = value
        self.task_backlogs[declaration.task] = name

    def dispatchers(self) -> List[FairDispatcher]:
        """This process's dispatchers, one per resolved backlog.

        A backlog whose dispatcher cannot be built now (its storage is down
        while the defaults of its controls are written) is logged and left
        to the next call: the lease keeper goes on sweeping the others.
        """
        dispatchers: List[FairDispatcher] = []
        for backlog in list(self.backlogs.values()):
            try:
                dispatchers.append(backlog.dispatcher())
            except Exception as exc:  # noqa: BLE001 - logged; the next sweep tries again
                logger.warning("ranch: backlog %r cannot be swept now (%r)", backlog.name, exc)
        return dispatchers

    def statuses(self) -> List[Tuple[str, Callable[[], FairDispatcher]]]:
        """``(name, dispatcher getter)`` of every backlog (resolving declarations first)."""
        return [(backlog.name, backlog.dispatcher) for backlog in self.resolve()]


_CREATE_LOCK = ProcessLock()
