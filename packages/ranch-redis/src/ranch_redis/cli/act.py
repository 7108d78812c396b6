"""``ranch pause|resume|purge BACKLOG KEY`` and ``ranch set-weight|set-limit|set-rate BACKLOG KEY VALUE``.

Each runs the :class:`~ranch_core.FairScheduler` control of the same name on
the backlog's storage, so it is checked and applied exactly as from Python.
No wake-up is published from here: a resumed key or a raised limit makes
calls runnable that the adapters' sweeps (Celery bootstep, Dramatiq
middleware) publish wake-ups for within their interval.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ranch_core import FairScheduler
from ranch_core.keys import Key, key_text

from ranch_redis.cli.connect import Connection
from ranch_redis.cli.errors import UsageError
from ranch_redis.cli.tables import dumps

#: The actions, and what each says it did.
DONE = {
    "pause": "paused",
    "resume": "resumed",
    "purge": "purged",
    "set-weight": "set the weight of",
    "set-limit": "set the concurrency limit of",
    "set-rate": "set the rate limit of",
}


def optional(value: str) -> Optional[str]:
    """``none`` (any case) means "remove the setting"."""
    return None if value.strip().lower() == "none" else value


def number(value: str, name: str) -> float:
    """``value`` as a float; :class:`UsageError` naming ``name`` otherwise."""
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number, not {value!r}") from None


def count(value: Optional[str], name: str) -> Optional[int]:
    """``value`` as an int (``None`` stays); :class:`UsageError` naming ``name`` otherwise."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name} must be a whole number or 'none', not {value!r}") from None


def act(
    connection: Connection,
    action: str,
    backlog: str,
    key: Key,
    value: Optional[str],
    burst: int,
    as_json: bool,
) -> str:
    """Run ``action`` on ``key``; a bad value is a :class:`UsageError` and changes nothing."""
    storage = connection.backlog(backlog)
    scheduler = FairScheduler(storage)
    result: Dict[str, Any] = {"backlog": storage.namespace, "key": key, "action": action}
    try:
        if action == "pause":
            scheduler.pause_key(key)
        elif action == "resume":
            scheduler.resume_key(key)
        elif action == "purge":
            result["purged"] = scheduler.purge_key(key)
        elif action == "set-weight":
            result["weight"] = number(str(value), "weight")
            scheduler.set_weight(key, result["weight"])
        elif action == "set-limit":
            result["limit"] = count(optional(str(value)), "limit")
            scheduler.set_concurrency_limit(key, result["limit"])
        elif action == "set-rate":
            result["rate"], result["burst"] = optional(str(value)), burst
            scheduler.set_rate_limit(key, result["rate"], burst=burst)
        else:  # pragma: no cover - argparse offers only the actions above
            raise UsageError(f"unknown action {action!r}")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(str(exc)) from None
    if as_json:
        return dumps(result)
    said = f"{DONE[action]} key {key_text(key)!r} of backlog {storage.namespace!r}"
    extra = {k: v for k, v in result.items() if k not in ("backlog", "key", "action")}
    return said + "".join(f"; {k}: {v}" for k, v in extra.items())
