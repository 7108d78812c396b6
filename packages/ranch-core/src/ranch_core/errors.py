"""Exceptions raised by Ranch."""

from __future__ import annotations


class RanchError(Exception):
    """Base class of every exception Ranch raises on purpose."""


class StorageUnavailable(RanchError):
    """The storage could not be reached within its retry budget.

    Nothing was written when this is raised from a write: callers may retry.
    """


class CorruptTask(RanchError):
    """A stored task could not be decoded; it was removed and reported."""
