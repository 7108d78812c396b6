"""Declaring a backlog (fairness domain): the rules both adapters apply.

A backlog is declared by the first task or actor that names it and joined by
the others. :func:`check_backlog_name` checks a name, :func:`check_join`
refuses a task that joins with settings contradicting the backlog, and
:func:`redis_storage_class` gives ranch-redis' storage or one clear error.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable, Optional, Tuple

import attrs

from ranch_core import validation
from ranch_core.errors import BacklogConflict, MissingExtra


def check_backlog_name(name: Any, argument: str = "backlog") -> str:
    """A backlog name is a non-empty string without ``{``/``}`` (it becomes a Redis hash tag)."""
    checked = validation.check_name(name, argument)
    if "{" in checked or "}" in checked:
        raise ValueError(f"{argument} must not contain '{{' or '}}': {checked!r}")
    return checked


def check_weight_function(weight_function: Any) -> None:
    """``None`` or a callable ``(lru_key, LRUKeyMetadata) -> float``."""
    if weight_function is not None and not callable(weight_function):
        raise TypeError("weight_function must be callable: (lru_key, LRUKeyMetadata) -> float")


def check_cost(cost: Any, weight_function: Any = None) -> None:
    """An adapter's ``cost``: ``None`` (not given), ``"calls"`` or ``"runtime"``
    (README, "Fair by time"); ``"runtime"`` takes no ``weight_function`` yet."""
    if cost is None:
        return
    if not isinstance(cost, str):
        raise TypeError(f"cost must be 'calls' or 'runtime', not {type(cost).__name__}")
    if validation.check_cost_mode(cost) is not None and weight_function is not None:
        raise ValueError("cost='runtime' takes no weight_function (not supported yet)")


@attrs.frozen
class BacklogSettings:
    """What a task or actor says about the backlog it names.

    ``queue`` is the queue its wake-ups travel on (``None``: the adapter
    does not tie a backlog to one queue). ``storage`` is an explicit storage
    (``None``: resolved by the adapter's rule). ``weight_function`` is
    ``None`` when not given.
    """

    name: str
    queue: Optional[str] = None
    storage: Any = None
    weight_function: Optional[Callable[..., float]] = None


def check_join(existing: BacklogSettings, joining: BacklogSettings, *, who: str) -> None:
    """Refuse ``joining`` (declared by ``who``) if it contradicts ``existing``.

    Tasks of one backlog share one queue, one storage and one weight
    function; a joiner may leave storage and weight function unset.
    """
    name = existing.name
    if joining.queue is not None and existing.queue is not None and joining.queue != existing.queue:
        raise BacklogConflict(
            f"{who} names backlog {name!r} on queue {joining.queue!r}, but the backlog is on queue "
            f"{existing.queue!r}: every task of one backlog uses the same queue"
        )
    if joining.storage is not None and joining.storage is not existing.storage:
        raise BacklogConflict(
            f"{who} names backlog {name!r} with another storage: tasks sharing a backlog share its "
            "storage; pass storage= only once"
        )
    if joining.weight_function is not None and joining.weight_function is not existing.weight_function:
        raise BacklogConflict(
            f"{who} names backlog {name!r} with another weight_function: tasks sharing a backlog "
            "share its weight function; pass it only once"
        )


def check_storage_unshared(name: str, storage: Any, others: Iterable[Tuple[str, Any]]) -> None:
    """Refuse one storage object for two backlogs (they would mix their keys)."""
    for other_name, other_storage in others:
        if other_name != name and other_storage is storage:
            raise BacklogConflict(
                f"this storage already holds backlog {other_name!r}; give backlog {name!r} its own "
                "(e.g. another namespace)"
            )


def redis_storage_class(install: str) -> Any:
    """``ranch_redis.RedisStorage``, or :class:`~ranch_core.errors.MissingExtra`
    naming ``pip install <install>`` when ranch-redis is not installed."""
    try:
        module = importlib.import_module("ranch_redis")
    except ImportError:
        raise MissingExtra(f"Redis storage needs ranch-redis: pip install {install!r}") from None
    return module.RedisStorage
