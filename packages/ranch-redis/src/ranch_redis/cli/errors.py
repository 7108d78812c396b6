"""The one error of the ``ranch`` command that is the user's: it exits 2."""

from __future__ import annotations

from ranch_core.errors import RanchError


class UsageError(RanchError, ValueError):
    """A command line that cannot be run as given (a bad value, an unknown backlog)."""
