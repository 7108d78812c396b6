"""Exceptions ranch-dramatiq stores or raises: the core's family, under Dramatiq's names.

:class:`CallExpired` is what an expired call's result holds: with the Results
middleware, ``message.get_result()`` of such a call raises
``dramatiq.results.ResultFailure`` whose ``orig_exc_type`` is ``"CallExpired"``.
:class:`UnknownBacklog` is raised by a wake-up naming a backlog this worker
never declared; the wake-up is retried (Dramatiq's Retries middleware), so a
worker that does know the backlog picks it up.
"""

from __future__ import annotations

from ranch_core.errors import CallExpired, UnknownBacklog

__all__ = ["CallExpired", "UnknownBacklog"]
