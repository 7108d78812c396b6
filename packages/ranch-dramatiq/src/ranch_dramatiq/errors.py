"""Exceptions ranch-dramatiq stores or raises: the core's family (:class:`ranch_core.errors.RanchError`).

:class:`CallExpired` is what an expired call's result holds: with the Results
middleware, ``message.get_result()`` of such a call raises
``dramatiq.results.ResultFailure`` whose ``orig_exc_type`` is ``"CallExpired"``.
:class:`CallRevoked` is what a call deleted while it waited holds, by
``purge_key`` (its message says ``purged``) or ``revoke_call`` (``revoked``):
``orig_exc_type == "CallRevoked"``.
:class:`BacklogFull` is raised by an ``lru_send`` beyond the key's
``max_backlog``; nothing was stored.
:class:`UnknownBacklog` (a ``LookupError``) is raised by a wake-up naming a
backlog this worker never declared; the wake-up is retried (Dramatiq's
Retries middleware), so a worker that does know the backlog picks it up.
:class:`BacklogConflict` (a ``ValueError``) refuses an ``lru_actor`` that
joins a backlog with another queue, storage, weight function or defaults;
:class:`MissingExtra` (an ``ImportError``) says ``pip install
'ranch-dramatiq[redis]'`` when a RedisBroker needs ranch-redis.
"""

from __future__ import annotations

from ranch_core.errors import (
    BacklogConflict,
    BacklogFull,
    CallExpired,
    CallRevoked,
    MissingExtra,
    RanchError,
    UnknownBacklog,
)

__all__ = [
    "BacklogConflict",
    "BacklogFull",
    "CallExpired",
    "CallRevoked",
    "MissingExtra",
    "RanchError",
    "UnknownBacklog",
]
