"""One bulk submit for the Ranch messages of a Dramatiq ``group``.

``group.run`` enqueues its children one by one (each message, the first
step of each pipeline). :func:`install_group_batching` wraps that method
(once per process): while a group runs, the Ranch messages it enqueues are
collected in a :class:`Batch` instead of being stored one at a time, and
stored when the group has enqueued them all, with one
:meth:`~ranch_core.dispatcher.FairDispatcher.submit_many` per backlog, key
and Ranch settings (one storage round trip per 1,000 calls, at most one
wake-up per round trip). Each message's id is known before it is stored,
so nothing else changes for the group; plain messages in it are enqueued
as Dramatiq enqueues them.

If the calls cannot all be encoded, none is stored and ``group.run``
raises ``TypeError`` naming the message. ``group.run(delay=...)`` stores
its Ranch messages as delayed calls (one bulk submit per key).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from dramatiq import composition
from ranch_core.protocols import MAX_BATCH

from ranch_dramatiq.encoding import EncoderSerializer

if TYPE_CHECKING:
    from ranch_dramatiq.pending import Pending

logger = logging.getLogger("ranch_dramatiq")

_local = threading.local()
_install_lock = threading.Lock()


class Batch:
    """The Ranch messages one group enqueues, stored together by :meth:`flush`."""

    def __init__(self) -> None:
        self.pending: List[Pending] = []

    def add(self, pending: Pending) -> None:
        """Collect one checked message (stored at :meth:`flush`)."""
        self.pending.append(pending)

    def flush(self) -> None:
        """Store every collected message: one ``submit_many`` per (backlog, key, settings)."""
        pending, self.pending = self.pending, []
        groups: Dict[Tuple[Any, ...], List[Pending]] = {}
        for item in pending:
            groups.setdefault((id(item.backlog), item.settings, item.delay), []).append(item)

        def label(index: int) -> str:
            return f"Ranch message {index} of the group (message id {pending[index].message_id})"

        if len(groups) > 1 or len(pending) > MAX_BATCH:
            # several storage steps: check every call before the first is written
            check_encodable(pending, label)
        for members in groups.values():
            first = members[0]
            try:
                first.backlog.dispatcher.submit_many(
                    first.settings.key,
                    [member.call for member in members],
                    priority_weight=first.settings.priority_weight,
                    expiry=first.settings.expiry,
                    tags=first.settings.tag_map(),
                    task_ids=[member.message_id for member in members],
                    delay=first.delay,
                )
            except TypeError:
                check_encodable(pending, label)
                raise


def check_encodable(pending: Sequence[Pending], label: Callable[[int], str]) -> None:
    """``TypeError`` naming (by ``label(index)``) the first call its backlog's storage cannot encode."""
    for index, item in enumerate(pending):
        serializer = getattr(item.backlog.storage, "serializer", None) or EncoderSerializer()
        try:
            serializer.dumps(item.call.to_payload())
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{label(index)}: {exc}") from None


def current_batch() -> Optional[Batch]:
    """The batch of the group running in this thread, if any."""
    batch: Optional[Batch] = getattr(_local, "batch", None)
    return batch


def has_ranch_message(child: Any) -> bool:
    """Whether a group child (message, pipeline or group) enqueues a Ranch message when run."""
    if isinstance(child, composition.group):
        return any(has_ranch_message(item) for item in child.children)
    if isinstance(child, composition.pipeline):
        return bool(child.messages) and has_ranch_message(child.messages[0])
    options = getattr(child, "options", None) or {}
    return options.get("lru_key") is not None


def install_group_batching() -> None:
    """Wrap ``dramatiq.composition.group.run`` so a group's Ranch messages are stored in bulk (once)."""
    group = composition.group
    with _install_lock:
        original = group.__dict__.get("run")
        if original is None or getattr(original, "_ranch_batching", False):
            return

        def run(self: Any, *, delay: Optional[int] = None) -> Any:
            if current_batch() is not None:  # a nested group: the outer group stores it all
                return original(self, delay=delay)
            batch = _local.batch = Batch()
            try:
                result = original(self, delay=delay)
            except BaseException:
                _local.batch = None
                try:  # as Dramatiq, which enqueued the children before the failure
                    batch.flush()
                except Exception:
                    logger.exception("ranch: could not store the Ranch messages of a failed group.run")
                raise
            _local.batch = None
            batch.flush()
            return result

        run._ranch_batching = True  # type: ignore[attr-defined]
        run.__doc__ = original.__doc__
        group.run = run  # type: ignore[method-assign]
