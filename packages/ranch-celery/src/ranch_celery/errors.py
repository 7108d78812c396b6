"""Exceptions ranch-celery raises: the core's family (:class:`~ranch_core.errors.RanchError`).

:class:`StorageNotConfigured` is raised at the first use of a backlog whose
storage cannot be resolved from the app's final configuration (see
:mod:`ranch_celery.storage`).
"""

from __future__ import annotations

from ranch_core.errors import BacklogConflict, CallExpired, RanchError, UnknownBacklog


class StorageNotConfigured(RanchError, ValueError):
    """No storage for a backlog: no ``storage=``, no ``ranch_storage_url``, and
    a broker that is neither Redis nor ``memory://``."""


__all__ = ["BacklogConflict", "CallExpired", "RanchError", "StorageNotConfigured", "UnknownBacklog"]
