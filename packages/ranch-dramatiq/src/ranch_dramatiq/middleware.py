"""The ``Ranch`` middleware: a broker's backlogs, wake-up actors and lease keeper."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware
from ranch_core import validation
from ranch_core.backlogs import (
    BacklogSettings,
    check_backlog_name,
    check_cost,
    check_join,
    check_storage_unshared,
    check_weight_function,
)
from ranch_core.dispatcher import MAX_WAKEUPS, FairDispatcher
from ranch_core.errors import BacklogConflict
from ranch_core.leases import LeaseKeeper
from ranch_core.models import RateLimit
from ranch_core.protocols import Controls, RuntimeCosts, Storage
from ranch_core.scheduler import WeightFunction

from ranch_dramatiq.backlog import RESUBMIT, DramatiqBacklog
from ranch_dramatiq.errors import UnknownBacklog
from ranch_dramatiq.storage import resolve_storage

logger = logging.getLogger("ranch_dramatiq")

#: Name of the wake-up actor of a queue: ``ranch_wake_up:<queue_name>``.
WAKE_UP_PREFIX = "ranch_wake_up:"

#: The wake-up actor's name in ranch-dramatiq 0.1. Declared beside the new
#: one on every queue so that wake-ups and delayed retries published by 0.1
#: producers (in flight during an upgrade) are still consumed; 0.1 named a
#: backlog after its actor, which such a wake-up is mapped to.
LEGACY_WAKE_UP_PREFIX = "ranch_prioritize:"

#: Options of wake-up actors. A wake-up must never be lost: no age
#: limit, unlimited retries (e.g. while the storage is unreachable) with a
#: backoff of at most a minute, and no result stored.
WAKE_UP_OPTIONS: Dict[str, Any] = {
    "max_retries": None,
    "min_backoff": 500,
    "max_backoff": 60_000,
    "max_age": 0,
    "store_results": False,
}


#: Calls a worker thread runs under one wake-up before passing it on
#: (measured in benchmarks/dramatiq_budget.py, see the README).
WAKEUP_BUDGET = 8


def check_count(value: Any, name: str) -> int:
    """A positive ``int`` (not a ``bool``), else ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value


def check_defaults(
    existing: DramatiqBacklog, limit: Optional[int], rate: Optional[RateLimit], who: str
) -> None:
    """:class:`BacklogConflict` if a joiner's defaults (``None``: not given)
    contradict the backlog's (rates compare by calls per second and burst)."""
    name = existing.name
    if limit is not None and limit != existing.default_concurrency_limit:
        raise BacklogConflict(
            f"{who} names backlog {name!r} with default_concurrency_limit={limit}, but the backlog has "
            f"default_concurrency_limit={existing.default_concurrency_limit}: pass it only once"
        )
    current = existing.default_rate_limit
    if rate is not None and (
        current is None or (rate.per_second, rate.burst) != (current.per_second, current.burst)
    ):
        raise BacklogConflict(
            f"{who} names backlog {name!r} with default_rate_limit={rate.text!r}, but the backlog has "
            f"default_rate_limit={None if current is None else current.text!r}: pass it only once"
        )


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

    Wake-ups: at most ``max_wakeups`` wake-up messages per backlog are
    outstanding (default 64; ``lru_actor(..., max_wakeups=)`` sets one
    backlog's). A worker process registers its ``worker_threads`` as its
    slots, so the effective bound grows to the fleet's concurrency when
    that is larger. A token's travel time in the broker (``token_ttl``) is
    the sweep interval: a wake-up lost in the broker is replaced within
    about two sweep intervals. A worker thread holding a token runs up to
    ``wakeup_budget`` calls back to back (each a fresh fair choice) before
    it passes the token on through the broker (default
    :data:`WAKEUP_BUDGET`; 1 passes it on after every call).
    """

    def __init__(
        self,
        *,
        lease_seconds: float = 60.0,
        sweep_interval: Optional[float] = None,
        max_wakeups: int = MAX_WAKEUPS,
        wakeup_budget: int = WAKEUP_BUDGET,
    ) -> None:
        self.lease_seconds = validation.check_lease(lease_seconds)
        if sweep_interval is None:
            sweep_interval = self.lease_seconds / 3
        self.sweep_interval = validation.check_lease(sweep_interval)
        if self.sweep_interval >= self.lease_seconds:
            raise ValueError("sweep_interval must be shorter than lease_seconds")
        self.max_wakeups = check_count(max_wakeups, "max_wakeups")
        self.wakeup_budget = check_count(wakeup_budget, "wakeup_budget")
        self.slots = 0
        self._lock = threading.Lock()
        self._backlogs: Dict[str, DramatiqBacklog] = {}
        self._actor_backlogs: Dict[str, str] = {}
        self._wake_ups: Dict[str, Any] = {}
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

    def backlog(self, name: str) -> DramatiqBacklog:
        """The backlog called ``name``; :class:`UnknownBacklog` if never declared here."""
        try:
            return self._backlogs[name]
        except KeyError:
            raise UnknownBacklog(
                f"backlog {name!r} is not declared in this process: import the module that defines its "
                f"lru_actor in every worker"
            ) from None

    def backlogs(self) -> List[DramatiqBacklog]:
        """Every backlog declared on this broker."""
        with self._lock:
            return list(self._backlogs.values())

    def dispatchers(self) -> List[FairDispatcher]:
        """The dispatchers the lease keeper sweeps."""
        return [backlog.dispatcher for backlog in self.backlogs()]

    def backlog_of_legacy_wake_up(self, name: str) -> DramatiqBacklog:
        """The backlog a 0.1 wake-up names: a backlog, or (0.1's default) an actor's name."""
        with self._lock:
            backlog = self._actor_backlogs.get(name, name) if name not in self._backlogs else name
        return self.backlog(backlog)

    def check_backlog(
        self,
        broker: Broker,
        name: str,
        queue_name: str,
        storage: Optional[Any],
        weight_function: Optional[WeightFunction],
        *,
        who: str = "lru_actor",
        max_wakeups: Optional[int] = None,
        default_concurrency_limit: Optional[int] = None,
        default_rate_limit: Optional[str] = None,
        cost: Optional[str] = None,
    ) -> Optional[Storage]:
        """Refuse a declaration (by ``who``) that conflicts with the backlogs already here.

        The rules are :mod:`ranch_core.backlogs`' (shared with ranch-celery):
        one queue, one storage and one weight function per backlog, one
        backlog per storage; and one ``max_wakeups``, one
        ``default_concurrency_limit`` and one ``default_rate_limit`` (a
        joiner may leave them unset; rates compare by calls per second, so
        ``"1/s"`` and ``"60/m"`` agree). Defaults need a storage with per-key
        controls (:class:`~ranch_core.protocols.Controls`, else ``TypeError``).
        Returns the storage a new backlog would use, ``None`` if ``name``
        exists (the actor joins it). Nothing is registered yet.
        """
        check_backlog_name(name)
        check_weight_function(weight_function)
        check_cost(cost, weight_function)
        if max_wakeups is not None:
            check_count(max_wakeups, "max_wakeups")
        limit = validation.check_concurrency_limit(default_concurrency_limit, "default_concurrency_limit")
        rate = validation.check_rate_limit(default_rate_limit, name="default_rate_limit")
        if storage is not None and not isinstance(storage, Storage):
            raise TypeError(
                f"storage must implement ranch_core.protocols.Storage (e.g. ranch_redis.RedisStorage), "
                f"not {type(storage).__name__}"
            )
        with self._lock:
            existing = self._backlogs.get(name)
            if existing is not None:
                joining = BacklogSettings(name, queue_name, storage, weight_function)
                check_join(existing.settings, joining, who=who)
                if max_wakeups is not None and max_wakeups != existing.max_wakeups:
                    raise BacklogConflict(
                        f"{who} names backlog {name!r} with max_wakeups={max_wakeups}, but the backlog has "
                        f"max_wakeups={existing.max_wakeups}: pass it only once"
                    )
                check_defaults(existing, limit, rate, who)
                if cost is not None and cost != existing.cost:
                    raise BacklogConflict(
                        f"{who} names backlog {name!r} with cost={cost!r}, but the backlog has "
                        f"cost={existing.cost!r}: pass it only once"
                    )
                return None
            resolved = resolve_storage(broker, name, storage)
            if (limit is not None or rate is not None) and not isinstance(resolved, Controls):
                argument = "default_concurrency_limit" if limit is not None else "default_rate_limit"
                raise TypeError(
                    f"{who} passes {argument}, but {type(resolved).__name__} has no per-key controls "
                    "(ranch_core.protocols.Controls)"
                )
            if cost == "runtime" and not isinstance(resolved, RuntimeCosts):
                raise TypeError(
                    f"{who} passes cost='runtime', but {type(resolved).__name__} cannot charge by run "
                    "time (ranch_core.protocols.RuntimeCosts)"
                )
            check_storage_unshared(
                name, resolved, ((other.name, other.storage) for other in self._backlogs.values())
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
        actor_name: Optional[str] = None,
        max_wakeups: Optional[int] = None,
        default_concurrency_limit: Optional[int] = None,
        default_rate_limit: Optional[str] = None,
        cost: Optional[str] = None,
    ) -> DramatiqBacklog:
        """Register backlog ``name`` (after :meth:`check_backlog`) or return it.

        A queue's wake-up actor takes the ``priority`` of the first
        ``lru_actor`` declared on that queue. A new backlog writes its
        defaults to its storage; one that exists keeps its own (a joiner
        agreed with them in :meth:`check_backlog`)."""
        with self._lock:
            if actor_name is not None:
                self._actor_backlogs[actor_name] = name
            existing = self._backlogs.get(name)
            if existing is not None:
                return existing
            assert storage is not None
            backlog = DramatiqBacklog(
                broker,
                name,
                queue_name,
                storage,
                self._wake_up(broker, queue_name, priority),
                weight_function=weight_function,
                lease_seconds=self.lease_seconds,
                token_ttl=self.sweep_interval,
                max_wakeups=self.max_wakeups if max_wakeups is None else max_wakeups,
                budget=self.wakeup_budget,
                default_concurrency_limit=default_concurrency_limit,
                default_rate_limit=validation.check_rate_limit(default_rate_limit, name="default_rate_limit"),
                cost="calls" if cost is None else cost,
            )
            if self.slots:
                backlog.set_slots(self.slots)
            self._backlogs[name] = backlog
            return backlog

    def _wake_up(self, broker: Broker, queue_name: str, priority: int) -> Any:
        """The queue's wake-up actor, declared on first use (lock held), with
        its 0.1 name (:data:`LEGACY_WAKE_UP_PREFIX`) beside it."""
        actor = self._wake_ups.get(queue_name)
        if actor is None:

            def wake_up(backlog: str, token: Any = None, **kwargs: Any) -> None:
                self.backlog(backlog).handle(kwargs.get(RESUBMIT), token)

            def legacy_wake_up(backlog: str, token: Any = None, **kwargs: Any) -> None:
                self.backlog_of_legacy_wake_up(backlog).handle(kwargs.get(RESUBMIT), token)

            actor = self._declare(broker, WAKE_UP_PREFIX + queue_name, wake_up, queue_name, priority)
            self._declare(broker, LEGACY_WAKE_UP_PREFIX + queue_name, legacy_wake_up, queue_name, priority)
            self._wake_ups[queue_name] = actor
        return actor

    @staticmethod
    def _declare(broker: Broker, actor_name: str, fn: Any, queue_name: str, priority: int) -> Any:
        fn.__name__ = fn.__qualname__ = actor_name
        return dramatiq.Actor(
            fn,
            broker=broker,
            actor_name=actor_name,
            queue_name=queue_name,
            priority=priority,
            options=dict(WAKE_UP_OPTIONS),
        )

    # -- worker lifecycle --------------------------------------------------

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Register this worker's threads as its slots (so the backlogs'
        tokens grow to the fleet's concurrency) and start renewing leases,
        reclaiming dead workers' calls and replacing lost wake-ups."""
        with self._lock:
            self.slots = max(1, int(getattr(worker, "worker_threads", 1) or 1))
            for backlog in self._backlogs.values():
                backlog.set_slots(self.slots)
                try:  # at once, so tokens are sized to the fleet before the first wake-up
                    backlog.dispatcher.register_slots()
                except Exception as exc:  # noqa: BLE001 - the lease keeper's sweep registers them later
                    logger.warning("ranch: could not register the slots of %r yet (%r)", backlog.name, exc)
            if self._keeper is None:
                self._keeper = LeaseKeeper(self.dispatchers, self.sweep_interval)
                self._keeper.start()

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        """Stop the lease keeper once running calls have finished."""
        with self._lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop(timeout=self.sweep_interval + 5)
