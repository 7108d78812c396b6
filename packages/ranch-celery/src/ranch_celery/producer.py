"""Storing calls: one (now, or with the group that applies it), or many with one bulk submit.

Every argument is checked before anything is written, and an argument or
option the backlog's serializer cannot encode raises ``TypeError`` naming
it: nothing is stored.
"""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ranch_core import validation
from ranch_core.calls import Call, check_arguments
from ranch_core.keys import Key
from ranch_core.protocols import MAX_BATCH

from ranch_celery import replacing
from ranch_celery.batching import Pending, current_batch
from ranch_celery.codec import explain_call, explain_unencodable
from ranch_celery.results import REFUSED, announce, withdraw

if TYPE_CHECKING:
    from ranch_celery.backlog import CeleryBacklog


def store_call(
    backlog: CeleryBacklog,
    lru_key: Key,
    call: Call,
    task_id: str,
    priority_weight: Optional[float],
    expiry: Optional[float],
    tags: Optional[Mapping[str, str]],
    delay: Optional[float] = None,
) -> str:
    """Store ``call``: now (one submit), or, while a group applies its signatures, with the group's
    other calls (:mod:`ranch_celery.batching`, checked now). Returns the call's task id.
    With ``delay`` (seconds: ``countdown``/``eta``) it is a delayed call. ``lru_key`` is a string or
    a ``(group, member)`` pair (a list of two, as JSON carries one, becomes a tuple)."""
    lru_key = validation.check_any_key(lru_key, "lru_key")
    batch = current_batch()
    if batch is not None:
        checked_tags = None if tags is None else validation.check_tags(tags)
        batch.add(
            Pending(
                backlog=backlog,
                key=lru_key,
                call=call,
                task_id=task_id,
                priority_weight=validation.check_optional_weight(priority_weight, "priority_weight"),
                expiry=validation.check_expiry(expiry),
                tags=None if checked_tags is None else tuple(sorted(checked_tags.items())),
                delay=validation.check_delay(delay),
            )
        )
        return task_id
    store = functools.partial(_submit, backlog, lru_key, call, task_id, priority_weight, expiry, tags, delay)
    if replacing.defer(task_id, store):
        # Task.replace of the running call: stored once its lease is acknowledged (replacing.py).
        serializer = backlog.serializer
        named = None if serializer is None else explain_call(serializer, call)
        if named is not None:
            raise named
        return task_id
    return store()


def _submit(
    backlog: CeleryBacklog,
    lru_key: Key,
    call: Call,
    task_id: str,
    priority_weight: Optional[float],
    expiry: Optional[float],
    tags: Optional[Mapping[str, str]],
    delay: Optional[float] = None,
) -> str:
    announce(backlog.app, [call], [task_id])
    try:
        return backlog.dispatcher().submit(
            lru_key,
            call,
            priority_weight=priority_weight,
            expiry=expiry,
            tags=tags,
            task_id=task_id,
            delay=delay,
        )
    except REFUSED as exc:
        withdraw(backlog.app, [task_id], exc)
        serializer = backlog.serializer
        if serializer is not None and isinstance(exc, TypeError):
            named = explain_call(serializer, call)
            if named is not None:
                raise named from exc
        raise


def store_many(
    backlog: CeleryBacklog,
    lru_key: Key,
    calls: Iterable[Tuple[Sequence[Any], Optional[Mapping[str, Any]]]],
    options: Dict[str, Any],
    priority_weight: Optional[float],
    expiry: Optional[float],
    tags: Optional[Mapping[str, str]],
) -> List[str]:
    """Store ``(args, kwargs)`` pairs under ``lru_key`` (``lru_delay_many``); return their task ids.

    All are stored or none: every pair is checked (and, beyond one storage
    batch, encoded) before anything is written; a bad pair raises naming its index.
    A key's ``max_backlog`` refuses the whole list (``BacklogFull``): each storage
    batch is refused whole, and beyond one batch :meth:`FairDispatcher.check_room` checks them all first.
    """
    lru_key = validation.check_any_key(lru_key, "lru_key")
    if isinstance(calls, (str, bytes, Mapping)) or not isinstance(calls, Iterable):
        raise TypeError(f"calls must be an iterable of (args, kwargs) pairs, not {type(calls).__name__}")
    checked: List[Call] = []
    for index, pair in enumerate(calls):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"calls[{index}] must be an (args, kwargs) pair, not {pair!r:.80}")
        try:
            call_args, call_kwargs = check_arguments(pair[0], pair[1])
        except TypeError as exc:
            raise TypeError(f"calls[{index}]: {exc}") from None
        checked.append(Call(args=call_args, kwargs=call_kwargs, options=options))
    serializer = backlog.serializer
    if len(checked) > MAX_BATCH and serializer is not None:
        # The dispatcher stores batch by batch: check every call before the first is written.
        for index, call in enumerate(checked):
            named = explain_unencodable(serializer, call.args, call.kwargs)
            if named is not None:
                raise TypeError(f"calls[{index}]: {named}")
    if len(checked) > MAX_BATCH:
        backlog.dispatcher().check_room(lru_key, len(checked))
    task_ids = [str(uuid.uuid4()) for _ in checked]
    announce(backlog.app, checked, task_ids)
    try:
        ids = backlog.dispatcher().submit_many(
            lru_key,
            checked,
            priority_weight=priority_weight,
            expiry=expiry,
            tags=tags,
            task_ids=task_ids,
        )
    except REFUSED as exc:
        withdraw(backlog.app, task_ids, exc)
        if serializer is not None and isinstance(exc, TypeError):
            for index, call in enumerate(checked):
                named = explain_unencodable(serializer, call.args, call.kwargs)
                if named is not None:
                    raise TypeError(f"calls[{index}]: {named}") from exc
        raise
    return ids
