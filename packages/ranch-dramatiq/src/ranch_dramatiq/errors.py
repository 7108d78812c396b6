"""Exceptions ranch-dramatiq stores or raises."""

from __future__ import annotations


class CallExpired(Exception):
    """A call's ``expiry`` passed before a worker could run it; it never ran.

    With the Results middleware, ``message.get_result()`` of such a call
    raises ``dramatiq.results.ResultFailure`` whose ``orig_exc_type`` is
    ``"CallExpired"``.
    """


class UnknownBacklog(RuntimeError):
    """A wake-up message names a backlog this worker process never declared.

    The worker does not import the module that defines the ``lru_actor``.
    The wake-up is retried (Dramatiq's Retries middleware), so a worker that
    does know the backlog picks it up.
    """
