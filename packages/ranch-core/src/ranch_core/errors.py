"""Exceptions raised by Ranch."""

from __future__ import annotations


class RanchError(Exception):
    """Base class of every exception Ranch raises on purpose."""


class StorageUnavailable(RanchError):
    """The storage could not be reached within its retry budget.

    Raised from a write, the write may or may not have been applied (the
    connection can drop after the server ran it but before it answered); the
    message says how to find out. Retrying a push with the same ``task_id`` is
    safe: a duplicate raises ``ValueError``.
    """


class CorruptTask(RanchError):
    """A stored task could not be decoded; it was removed and reported."""
