"""One bulk submit for the Ranch calls of a Celery ``group``.

Celery's ``group.apply_async`` applies its signatures one by one in
``group._apply_tasks``. :func:`install_group_batching` wraps that method
(once per process): while a group applies its signatures, the Ranch calls
among them are collected in a :class:`Batch` instead of being stored one
at a time, and stored when the group has applied them all, with one
:meth:`~ranch_core.dispatcher.FairDispatcher.submit_many` per backlog, key
and per-call settings (one storage round trip per 1,000 calls, at most one
wake-up per round trip). Each call's ``AsyncResult`` is known before it is
stored (Celery freezes the group's task ids first), so nothing else
changes for the group. Plain signatures in the same group are published
as Celery publishes them.

If the calls cannot all be encoded, none is stored and the group's
``apply_async`` raises ``TypeError`` naming the call; if they do not all fit
under their keys' ``max_backlog``, none is stored and it raises
``ranch_core.BacklogFull`` (checked before the first of several storage
steps; a push racing the check may still fill a key in between).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import attrs
from ranch_core.calls import Call
from ranch_core.keys import Key
from ranch_core.protocols import MAX_BATCH

from ranch_celery.codec import explain_call
from ranch_celery.results import REFUSED, announce, withdraw

if TYPE_CHECKING:
    from ranch_celery.backlog import CeleryBacklog

_local = threading.local()


@attrs.frozen
class Pending:
    """A call waiting in a batch: where and how it will be stored."""

    backlog: CeleryBacklog
    key: Key
    call: Call
    task_id: str
    priority_weight: Optional[float]
    expiry: Optional[float]
    tags: Optional[Tuple[Tuple[str, str], ...]]
    #: Seconds until the call may run (``countdown``/``eta``), ``None``: at once.
    delay: Optional[float] = None

    def group(self) -> Tuple[Any, ...]:
        """Calls with the same group and near expiries and delays
        (:meth:`near`) go in one ``submit_many``."""
        return (
            self.backlog.name,
            self.key,
            self.priority_weight,
            self.tags,
            self.expiry is None,
            self.delay is None,
        )

    def near(self, other: Pending) -> bool:
        """Whether this call's expiry and delay are within :data:`NEAR` seconds
        of ``other``'s: ``expires=``/``eta=<datetime>`` give each call of a
        group a slightly different number of seconds, as the clock moves on
        while the group is applied."""
        return _near(self.expiry, other.expiry) and _near(self.delay, other.delay)


#: How far apart (seconds) the expiries, and the delays, of calls stored in one step may be.
NEAR = 0.1


def _near(a: Optional[float], b: Optional[float]) -> bool:
    return a is None or b is None or abs(a - b) <= NEAR


class Batch:
    """The Ranch calls one group applies, stored together by :meth:`flush`."""

    def __init__(self) -> None:
        self.pending: List[Pending] = []

    def add(self, pending: Pending) -> None:
        """Collect one call (checked already; stored at :meth:`flush`)."""
        self.pending.append(pending)

    def flush(self) -> None:
        """Store every collected call: one ``submit_many`` per (backlog, key, settings)."""
        groups: Dict[Tuple[Any, ...], List[List[Pending]]] = {}
        for pending in self.pending:
            # The first of the group's steps whose first call is near this one, else a new step.
            steps = groups.setdefault(pending.group(), [])
            step = next((step for step in steps if pending.near(step[0])), None)
            if step is None:
                steps.append([pending])
            else:
                step.append(pending)
        batches = [step for steps in groups.values() for step in steps]
        if len(batches) > 1 or len(self.pending) > MAX_BATCH:
            # Several storage steps: check every call, and the room under every key's
            # max_backlog, before the first is written (one step refuses its calls whole).
            for index, pending in enumerate(self.pending):
                _check_encodable(pending, index)
            per_key: Dict[Tuple[Any, Key], List[Pending]] = {}
            for pending in self.pending:
                per_key.setdefault((id(pending.backlog), pending.key), []).append(pending)
            for members in per_key.values():
                members[0].backlog.dispatcher().check_room(members[0].key, len(members))
        for members in batches:
            first = members[0]
            announce(first.backlog.app, [member.call for member in members], [m.task_id for m in members])
            try:
                first.backlog.dispatcher().submit_many(
                    first.key,
                    [member.call for member in members],
                    priority_weight=first.priority_weight,
                    expiry=_soonest(members),
                    tags=None if first.tags is None else dict(first.tags),
                    task_ids=[member.task_id for member in members],
                    delay=_latest(members),
                )
            except REFUSED as exc:
                withdraw(first.backlog.app, [member.task_id for member in members], exc)
                if isinstance(exc, TypeError):
                    for member in members:
                        _check_encodable(member, self.pending.index(member), exc)
                raise
        self.pending = []


def _soonest(members: List[Pending]) -> Optional[float]:
    """The group's expiry: the soonest of its members' (never later than a call asked)."""
    expiries = [member.expiry for member in members if member.expiry is not None]
    return min(expiries) if expiries else None


def _latest(members: List[Pending]) -> Optional[float]:
    """The group's delay: the latest of its members' (never earlier than a call asked)."""
    delays = [member.delay for member in members if member.delay is not None]
    return max(delays) if delays else None


def _check_encodable(pending: Pending, index: int, cause: Optional[BaseException] = None) -> None:
    serializer = pending.backlog.serializer
    named = None if serializer is None else explain_call(serializer, pending.call)
    if named is not None:
        raise TypeError(f"Ranch call {index} of the group (task id {pending.task_id}): {named}") from cause


def _stack() -> List[Batch]:
    stack: Optional[List[Batch]] = getattr(_local, "batches", None)
    if stack is None:
        stack = _local.batches = []
    return stack


def current_batch() -> Optional[Batch]:
    """The batch of the group applying its signatures in this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def install_group_batching() -> None:
    """Wrap ``celery.canvas.group._apply_tasks`` so a group's Ranch calls are stored in bulk (once)."""
    from celery.canvas import group

    original = group.__dict__.get("_apply_tasks")
    if original is None or getattr(original, "_ranch_batching", False):
        return

    def _apply_tasks(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        batch = Batch()
        stack = _stack()
        stack.append(batch)
        try:
            yield from original(self, *args, **kwargs)
        finally:
            stack.remove(batch)
        batch.flush()

    _apply_tasks._ranch_batching = True  # type: ignore[attr-defined]
    _apply_tasks.__doc__ = original.__doc__
    group._apply_tasks = _apply_tasks
