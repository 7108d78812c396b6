"""``Task.replace`` inside a call Ranch runs, with a Ranch signature as the replacement.

Celery's ``Task.replace`` applies the replacement under the running call's
own task id and ends the call with ``Ignore``. While the call runs, that id
is leased in the backlog, so the replacement cannot be stored under it yet:
:func:`defer` keeps the store of a call whose id is the running call's, and
:func:`running` stores it once the running call's lease is acknowledged.
Between the two steps a worker crash loses the replacement (the running
call is finished already): the storage has no step that acknowledges one
call and stores another under the same id at once.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, List, Optional

_local = threading.local()


class Running:
    """The call this thread runs, and the stores deferred until its lease is acknowledged."""

    __slots__ = ("deferred", "task_id")

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.deferred: List[Callable[[], object]] = []


def _stack() -> List[Running]:
    stack: Optional[List[Running]] = getattr(_local, "running", None)
    if stack is None:
        stack = _local.running = []
    return stack


@contextlib.contextmanager
def running(task_id: str) -> Iterator[Running]:
    """Mark ``task_id`` as the call this thread runs (its deferred stores are on the result)."""
    entry = Running(task_id)
    stack = _stack()
    stack.append(entry)
    try:
        yield entry
    finally:
        stack.remove(entry)


def defer(task_id: str, store: Callable[[], object]) -> bool:
    """Keep ``store`` for later if ``task_id`` is the id of the call this thread runs."""
    stack = _stack()
    if not stack or stack[-1].task_id != task_id:
        return False
    stack[-1].deferred.append(store)
    return True
