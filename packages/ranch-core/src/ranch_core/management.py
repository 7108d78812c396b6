"""``KeyManagement``: the seed's management API, once, for both adapters.

An adapter's task or actor class inherits it and says where its backlog is
(:meth:`KeyManagement._fair_dispatcher`, :meth:`KeyManagement._fair_backlog`).
The names and return values are those of ``celery-ranch``: setters return
``True``; invalid values raise ``TypeError``/``ValueError`` instead of
returning ``False`` (see MIGRATING.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ranch_core import validation
from ranch_core.errors import RanchError
from ranch_core.keys import Key

if TYPE_CHECKING:
    from ranch_core.dispatcher import FairDispatcher
    from ranch_core.scheduler import FairScheduler


def _key(lru_key: Key) -> Key:
    """A key of either shape; an error names ``lru_key`` (a JSON list pair becomes a tuple)."""
    return validation.check_any_key(lru_key, "lru_key")


class KeyManagement:
    """Per-key weights, tags, custom data and status of one backlog.

    ``lru_key`` is a string or a ``(group, member)`` pair (README, "Two-level
    keys"): ``set_priority_weight("tenant_a", w)`` weights the group among
    the groups, ``set_priority_weight(("tenant_a", "user_42"), w)`` the
    member among its group's members; the metadata of a string key counts
    its whole group (its own calls and its members')."""

    def _fair_dispatcher(self) -> FairDispatcher:
        raise NotImplementedError

    def _fair_backlog(self) -> str:
        raise NotImplementedError

    def _fair_scheduler(self) -> FairScheduler:
        return self._fair_dispatcher().scheduler

    def set_priority_weight(self, lru_key: Key, weight: float) -> bool:
        """Set a key's weight: 0.5 is served twice as often as 1.0. Returns ``True``."""
        self._fair_scheduler().set_weight(_key(lru_key), weight)
        return True

    def set_custom_data(self, lru_key: Key, name: str, value: Any) -> bool:
        """Store a JSON value for a key (weight functions see it in ``metadata.custom_data``).
        Returns ``True``."""
        self._fair_scheduler().set_custom_data(_key(lru_key), name, value)
        return True

    def get_custom_data(self, lru_key: Key, name: Optional[str] = None, default: Any = None) -> Any:
        """All custom data of a key (a dict), or the value of ``name`` (``default`` if unset)."""
        data = self._fair_scheduler().metadata(_key(lru_key)).custom_data
        return dict(data) if name is None else data.get(name, default)

    def add_tag(self, lru_key: Key, name: str, value: str = "") -> bool:
        """Tag a key ``name=value``. Returns ``True``."""
        self._fair_scheduler().add_tag(_key(lru_key), name, value)
        return True

    def get_tagged_clients(self, tag: str, value: Optional[str] = None) -> List[Key]:
        """Keys carrying ``tag`` (equal to ``value`` if given), sorted."""
        return self._fair_scheduler().keys_with_tag(tag, value)

    def set_concurrency_limit(self, lru_key: Key, limit: Optional[int]) -> bool:
        """At most ``limit`` calls of the key run at once, across all workers
        (``None``: the default). Returns ``True``."""
        self._fair_dispatcher().set_concurrency_limit(_key(lru_key), limit)
        return True

    def set_rate_limit(self, lru_key: Key, rate: Optional[str], *, burst: int = 1) -> bool:
        """At most ``burst + rate * T`` calls of the key start in any ``T`` seconds
        (Celery's syntax: ``"10/s"``, ``"100/m"``; ``None``: the default). Returns ``True``."""
        self._fair_dispatcher().set_rate_limit(_key(lru_key), rate, burst=burst)
        return True

    def pause_key(self, lru_key: Key) -> bool:
        """Hold the key's calls (they wait, keeping their place). Returns ``True``."""
        self._fair_dispatcher().pause_key(_key(lru_key))
        return True

    def resume_key(self, lru_key: Key) -> bool:
        """Let a paused key's calls run again. Returns ``True``."""
        self._fair_dispatcher().resume_key(_key(lru_key))
        return True

    def set_max_backlog(self, lru_key: Key, limit: Optional[int]) -> bool:
        """At most ``limit`` calls of the key wait; a call beyond it raises
        :class:`~ranch_core.errors.BacklogFull` (``None``: no limit). Returns ``True``."""
        self._fair_dispatcher().set_max_backlog(_key(lru_key), limit)
        return True

    def purge_key(self, lru_key: Key) -> int:
        """Delete every waiting call of the key; returns how many."""
        return self._fair_dispatcher().purge_key(_key(lru_key))

    def revoke_call(self, task_id: str) -> bool:
        """Delete one waiting call; ``False`` if it does not wait (any more)."""
        return self._fair_dispatcher().revoke_call(task_id)

    def get_client_metadata(self, lru_key: Key) -> Dict[str, Any]:
        """``lru_key``, ``weight``, ``last_execution``, ``pending_tasks``, ``delayed_tasks``,
        ``served_total``, ``tags``, ``custom_data`` and the controls in force
        (``concurrency_limit``, ``running``, ``rate_limit``, ``paused``, ``max_backlog``) of a key,
        and its ``run_estimate`` (seconds; ``cost="runtime"``, else ``None``)."""
        meta = self._fair_scheduler().metadata(_key(lru_key))
        return {
            "lru_key": meta.key,
            "key": meta.key,
            "weight": meta.weight,
            "last_execution": meta.last_served,
            "pending_tasks": meta.pending_tasks,
            "delayed_tasks": meta.delayed_tasks,
            "served_total": meta.served_total,
            "tags": dict(meta.tags),
            "custom_data": dict(meta.custom_data),
            "concurrency_limit": meta.concurrency_limit,
            "running": meta.running,
            "rate_limit": meta.rate_limit,
            "paused": meta.paused,
            "max_backlog": meta.max_backlog,
            "run_estimate": meta.run_estimate,
        }

    def get_system_status(self) -> Dict[str, Any]:
        """``initialized``, ``storage_type``, ``backlog``, ``backlog_size``, ``unique_lru_keys``
        (active keys), ``leased``, ``expired_total``, ``served_total``, ``delayed`` (delayed
        calls not yet due) and ``health``
        (``True``, or ``False`` with an ``error``: a bool, as in celery-ranch)."""
        status: Dict[str, Any] = {"backlog": self._fair_backlog()}
        try:
            scheduler = self._fair_scheduler()
        except RanchError as exc:
            status.update(initialized=False, storage_type="none", health=False, error=str(exc))
            return status
        status.update(initialized=True, storage_type=type(scheduler.storage).__name__)
        try:
            counts = scheduler.status()
        except RanchError as exc:
            status.update(health=False, error=str(exc))
            return status
        status.update(
            backlog_size=counts.backlog_size,
            unique_lru_keys=counts.active_keys,
            leased=counts.leased,
            expired_total=counts.expired_total,
            served_total=counts.served_total,
            delayed=counts.delayed,
            health=True,
        )
        return status
