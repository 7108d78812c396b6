"""Every exception Ranch raises on purpose: one family under :class:`RanchError`.

Where an error stands for a builtin, it derives from that builtin too, so
``except RanchError`` catches all of Ranch's and an existing ``except
LookupError``/``ValueError``/``ImportError`` keeps working.
"""

from __future__ import annotations

from ranch_core.keys import Key


class RanchError(Exception):
    """Base class of every exception Ranch raises on purpose."""


class StorageUnavailable(RanchError, ConnectionError):
    """The storage could not be reached within its retry budget.

    The message says whether anything may have been written: nothing when
    the server refused the connection; possibly, when the connection dropped
    after a write was sent. Retrying a push with the same ``task_id`` is
    safe: a duplicate raises :class:`DuplicateTask`.
    """


class CorruptTask(RanchError):
    """A stored task could not be decoded; it was removed and reported."""


class DuplicateTask(RanchError, ValueError):
    """A push named a ``task_id`` that is already waiting or leased."""


class UnknownBacklog(RanchError, LookupError):
    """A wake-up names a backlog this process never declared.

    The worker does not import the module that defines the ``lru_task`` or
    ``lru_actor``: a worker must know the same tasks as the producer.
    """


class BacklogConflict(RanchError, ValueError):
    """A task or actor joins a backlog with settings that contradict it
    (another queue, storage or weight function)."""


class BacklogFull(RanchError):
    """A push would take a key past its ``max_backlog``; nothing was stored.

    ``key`` names the key and ``limit`` its limit. A ``push_many`` that does
    not fit whole is refused whole.
    """

    def __init__(self, message: str, *, key: Key, limit: int) -> None:
        super().__init__(message)
        self.key = key
        self.limit = limit


class CallExpired(RanchError):
    """A call's ``expiry`` passed before a worker could run it; it never ran."""


class CallRevoked(RanchError):
    """A waiting call was deleted before any worker ran it; it never ran.

    ``reason`` is ``"purged"`` (``purge_key``) or ``"revoked"``
    (``revoke_call``); adapters put it in the message too, since a result
    backend may keep only the exception's type name and message.
    """

    def __init__(self, message: str, reason: str = "revoked") -> None:
        super().__init__(message)
        self.reason = reason


class PublishFailed(RanchError):
    """A call was stored but its wake-up could not be published, and
    removing it again failed too: the call is still stored.

    ``task_id`` and ``key`` name the call; ``__cause__`` is the publish
    error. The call runs when a worker's sweep or a later wake-up reaches
    its backlog; to cancel it, remove it once the storage answers again
    (``FairScheduler.remove(key, task_id)``).
    """

    def __init__(self, message: str, *, task_id: str, key: Key) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.key = key


class MissingExtra(RanchError, ImportError):
    """An optional package is needed and not installed; the message names
    the ``pip install`` that adds it."""
