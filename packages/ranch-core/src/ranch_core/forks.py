"""``ProcessLock``: a thread lock that a forked child gets fresh.

Celery's prefork pool forks its children while other threads of the parent
may run (Ranch's lease keeper resolving a storage, say). A ``threading.Lock``
held by such a thread at the moment of the fork is copied held into the
child, where no thread will ever release it: the child's first call that
takes it hangs for good. Every ``ProcessLock`` is replaced by a new, free
lock in the child right after a fork (``os.register_at_fork``), before any
other code of the child runs.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import Any, Callable, Optional, Type

_LOCKS: weakref.WeakSet[ProcessLock] = weakref.WeakSet()


class ProcessLock:
    """A ``threading.Lock`` (or, with ``factory=threading.RLock``, an RLock)
    used as a context manager, free again in a forked child."""

    def __init__(self, factory: Callable[[], Any] = threading.Lock) -> None:
        self._factory = factory
        self._lock = factory()
        _LOCKS.add(self)

    def __enter__(self) -> ProcessLock:
        self._lock.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._lock.release()

    def _renew(self) -> None:
        self._lock = self._factory()


def _after_fork_in_child() -> None:
    for lock in list(_LOCKS):
        lock._renew()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["ProcessLock"]
