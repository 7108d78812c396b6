"""Reading what the scripts return: task records and key state, corrupt data included.

A task record that cannot be decoded raises ``ValueError`` (the storage
reports and removes it); a key's state field that cannot be read is taken
at its default and named, so the storage can report it, exactly as the
scripts treat such fields (see ``scripts/common.lua``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ranch_core import algorithm
from ranch_core.keys import Key
from ranch_core.models import LRUKeyMetadata, ScheduledTask
from ranch_core.serializers import Serializer

from ranch_redis import layout


def decode_task(serializer: Serializer, task_id: bytes, body: bytes) -> ScheduledTask:
    """The task in ``body``; ``ValueError`` if it cannot be decoded."""
    key, enqueued_at, expires_at, data = layout.decode_body(body)
    try:
        payload = serializer.loads(data)
    except Exception as exc:  # noqa: BLE001 - any decoder error means corrupt data
        raise ValueError(f"payload cannot be decoded with {serializer.name}: {exc!r}") from None
    return ScheduledTask(
        task_id=task_id.decode("utf-8"),
        key=key,
        payload=payload,
        enqueued_at=enqueued_at,
        expires_at=expires_at,
    )


def parse_metadata(key: Key, reply: Sequence[Any]) -> Tuple[LRUKeyMetadata, List[str]]:
    """``metadata.lua``'s reply as metadata, and the names of the fields that were unreadable.

    An unreadable weight (not a number, or outside the weight range), served
    total, running count, last-served time or control setting reads as its
    default; an unreadable tag or custom value (not UTF-8, not JSON) is left
    out. The controls are those in force: the key's own setting, else the
    namespace's default (``reply[1]``, ``reply[2]``); ``reply[3]`` counts the
    key's delayed calls, ``reply[4]`` its running calls (``''``: its field
    ``r``; a string key's group with pairs counts theirs too).
    """
    state: Dict[bytes, bytes] = dict(zip(reply[5::2], reply[6::2]))
    tags: Dict[str, str] = {}
    custom: Dict[str, Any] = {}
    bad: List[str] = []
    for name, raw in state.items():
        try:
            if name.startswith(layout.TAG_PREFIX.encode()):
                tags[name[2:].decode("utf-8")] = raw.decode("utf-8")
            elif name.startswith(layout.CUSTOM_PREFIX.encode()):
                custom[name[2:].decode("utf-8")] = json.loads(raw)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            bad.append(name.decode("utf-8", "replace"))
    weight = _number(state.get(b"w"), algorithm.DEFAULT_WEIGHT, bad, "w")
    if not algorithm.MIN_WEIGHT <= weight <= algorithm.MAX_WEIGHT:
        bad.append("w")
        weight = algorithm.DEFAULT_WEIGHT
    served = _number(state.get(b"n"), 0.0, bad, "n")
    if served < 0 or served != int(served):
        bad.append("n")
        served = 0.0
    limit = _count(state.get(layout.LIMIT_FIELD.encode()), 1, bad, layout.LIMIT_FIELD)
    if limit is None and reply[1]:
        limit = int(reply[1])
    rate: Optional[str] = None
    if layout.RATE_FIELD.encode() in state:
        rate = state.get(layout.RATE_TEXT_FIELD.encode(), b"").decode("utf-8", "replace")
    elif reply[2]:
        rate = reply[2].decode("utf-8", "replace")
    meta = LRUKeyMetadata(
        key=key,
        weight=weight,
        last_served=_number(state.get(b"l"), None, bad, "l"),
        pending_tasks=int(reply[0]),
        served_total=int(served),
        tags=tags,
        custom_data=custom,
        concurrency_limit=limit,
        running=(
            int(reply[4])
            if reply[4] not in (b"", "")
            else _count(state.get(layout.RUNNING_FIELD.encode()), 0, bad, layout.RUNNING_FIELD) or 0
        ),
        rate_limit=rate,
        paused=state.get(layout.PAUSED_FIELD.encode()) == b"1",
        max_backlog=_count(state.get(layout.MAX_BACKLOG_FIELD.encode()), 0, bad, layout.MAX_BACKLOG_FIELD),
        delayed_tasks=int(reply[3]),
        run_estimate=_number(
            state.get(layout.RUN_ESTIMATE_FIELD.encode()), None, bad, layout.RUN_ESTIMATE_FIELD
        ),
    )
    return meta, sorted(set(bad))


def _count(raw: Optional[bytes], least: int, bad: List[str], field: str) -> Optional[int]:
    """A whole number ``>= least`` from a stored field; ``None`` (and ``field``
    noted in ``bad``) if absent or unreadable."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value >= least:
        return value
    bad.append(field)
    return None


def key_name(key_hex: bytes) -> Key:
    """The user key behind a hex key, or the hex itself if it is not UTF-8 hex."""
    try:
        return layout.key_of_hex(key_hex)
    except ValueError:
        return key_hex.decode("ascii", "replace")


def _number(raw: Optional[bytes], default: Any, bad: List[str], field: str) -> Any:
    """A finite float from a stored field; ``default`` (and ``field`` noted in ``bad``) if unreadable."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value):
        return value
    bad.append(field)
    return default
