"""The ``Ranch`` middleware: a broker's backlogs, prioritizers and lease keeper."""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware
from ranch_core import validation
from ranch_core.dispatcher import FairDispatcher
from ranch_core.leases import LeaseKeeper
from ranch_core.protocols import Storage
from ranch_core.scheduler import WeightFunction

from ranch_dramatiq.backlog import RESUBMIT, ActorBacklog
from ranch_dramatiq.errors import UnknownBacklog
from ranch_dramatiq.storage import resolve_storage

#: Name of the prioritizer actor of a queue.
PRIORITIZER_PREFIX = "ranch_prioritize:"

#: Options of prioritizer actors. A wake-up must never be lost: no age
#: limit, unlimited retries (e.g. while the storage is unreachable) with a
#: backoff of at most a minute, and no result stored.
PRIORITIZER_OPTIONS: Dict[str, Any] = {
    "max_retries": None,
    "min_backoff": 500,
    "max_backoff": 60_000,
    "max_age": 0,
    "store_results": False,
}


class Ranch(Middleware):
    """Fair scheduling for the ``lru_actor``\\ s of one broker.

    ``lru_actor`` adds one with the defaults when the broker has none; add
    your own first to change them::

        broker.add_middleware(Ranch(lease_seconds=30))

    A call being run holds a lease of ``lease_seconds``; the worker renews
    it every ``sweep_interval`` seconds (default a third of the lease) from
    a thread started at worker boot, which also puts back the calls of
    workers that died (their lease ran out) and publishes a wake-up for
    each. A killed worker's calls therefore run again after at most about
    ``lease_seconds + sweep_interval``.
    """

    def __init__(self, *, lease_seconds: float = 60.0, sweep_interval: Optional[float] = None) -> None:
        self.lease_seconds = validation.check_lease(lease_seconds)
        if sweep_interval is None:
            sweep_interval = self.lease_seconds / 3
        self.sweep_interval = validation.check_lease(sweep_interval)
        if self.sweep_interval >= self.lease_seconds:
            raise ValueError("sweep_interval must be shorter than lease_seconds")
        self._lock = threading.Lock()
        self._backlogs: Dict[str, ActorBacklog] = {}
        self._prioritizers: Dict[str, Any] = {}
        self._keeper: Optional[LeaseKeeper] = None

    @classmethod
    def of(cls, broker: Broker) -> Ranch:
        """The broker's ``Ranch`` middleware, added with the defaults if missing."""
        for middleware in broker.middleware:
            if isinstance(middleware, Ranch):
                return middleware
        ranch = cls()
        broker.add_middleware(ranch)
        return ranch

    # -- backlogs ----------------------------------------------------------

    def backlog(self, name: str) -> ActorBacklog:
        """The backlog called ``name``; :class:`UnknownBacklog` if never declared here."""
        try:
            return self._backlogs[name]
        except KeyError:
            raise UnknownBacklog(
                f"backlog {name!r} is not declared in this process: import the module that defines its "
                f"lru_actor in every worker"
            ) from None

    def backlogs(self) -> List[ActorBacklog]:
        """Every backlog declared on this broker."""
        with self._lock:
            return list(self._backlogs.values())

    def dispatchers(self) -> List[FairDispatcher]:
        """The dispatchers the lease keeper sweeps."""
        return [backlog.dispatcher for backlog in self.backlogs()]

    def check_backlog(
        self,
        broker: Broker,
        name: str,
        queue_name: str,
        storage: Optional[Any],
        weight_function: Optional[WeightFunction],
    ) -> Optional[Storage]:
        """Refuse a declaration that conflicts with the backlogs already here.

        Returns the storage a new backlog would use, ``None`` if ``name``
        exists (the actor joins it). Nothing is registered yet.
        """
        validation.check_name(name, "backlog")
        if weight_function is not None and not callable(weight_function):
            raise TypeError("weight_function must be callable")
        with self._lock:
            existing = self._backlogs.get(name)
            if existing is not None:
                if existing.queue_name != queue_name:
                    raise ValueError(
                        f"backlog {name!r} is on queue {existing.queue_name!r}; every lru_actor of one "
                        f"backlog must use the same queue_name, not {queue_name!r}"
                    )
                if storage is not None and storage is not existing.storage:
                    raise ValueError(f"backlog {name!r} already has a storage; do not pass another one")
                if weight_function is not None and weight_function is not existing.weight_function:
                    raise ValueError(f"backlog {name!r} already has its weight_function; pass it only once")
                return None
            resolved = resolve_storage(broker, name, storage)
            for other in self._backlogs.values():
                if other.storage is resolved:
                    raise ValueError(
                        f"this storage already holds backlog {other.name!r}; give backlog {name!r} its own "
                        f"(e.g. another namespace)"
                    )
            return resolved

    def add_backlog(
        self,
        broker: Broker,
        name: str,
        queue_name: str,
        storage: Optional[Storage],
        weight_function: Optional[WeightFunction],
        *,
        priority: int = 0,
    ) -> ActorBacklog:
        """Register backlog ``name`` (after :meth:`check_backlog`) or return it.

        A queue's prioritizer takes the ``priority`` of the first
        ``lru_actor`` declared on that queue."""
        with self._lock:
            existing = self._backlogs.get(name)
            if existing is not None:
                return existing
            assert storage is not None
            backlog = ActorBacklog(
                broker,
                name,
                queue_name,
                storage,
                self._prioritizer(broker, queue_name, priority),
                weight_function=weight_function,
                lease_seconds=self.lease_seconds,
            )
            self._backlogs[name] = backlog
            return backlog

    def _prioritizer(self, broker: Broker, queue_name: str, priority: int) -> Any:
        """The queue's prioritizer actor, declared on first use (lock held)."""
        actor = self._prioritizers.get(queue_name)
        if actor is None:
            actor_name = PRIORITIZER_PREFIX + queue_name

            def prioritize(backlog: str, **kwargs: Any) -> None:
                self.backlog(backlog).handle(kwargs.get(RESUBMIT))

            prioritize.__name__ = prioritize.__qualname__ = actor_name
            actor = dramatiq.Actor(
                prioritize,
                broker=broker,
                actor_name=actor_name,
                queue_name=queue_name,
                priority=priority,
                options=dict(PRIORITIZER_OPTIONS),
            )
            self._prioritizers[queue_name] = actor
        return actor

    # -- worker lifecycle --------------------------------------------------

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Start renewing leases and reclaiming dead workers' calls."""
        with self._lock:
            if self._keeper is None:
                self._keeper = LeaseKeeper(self.dispatchers, self.sweep_interval)
                self._keeper.start()

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        """Stop the lease keeper once running calls have finished."""
        with self._lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop(timeout=self.sweep_interval + 5)
