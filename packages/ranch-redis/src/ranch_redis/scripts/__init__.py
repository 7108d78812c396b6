"""The Lua scripts of :class:`~ranch_redis.RedisStorage`, one file per atomic step.

Each ``<name>.lua`` beside this module is one operation; ``common.lua`` (key
names, the body format, activation, lease reclaim, the per-key controls and
the token rules) is prepended to each,
and ``__NAME__`` tokens are replaced by ranch-core's constants (batch sizes,
the weight range) and by the reply codes of :mod:`ranch_redis.layout`.
``KEYS[1]`` of every script is the namespace's ``stats`` key.
The texts are rendered once per process; each storage registers them on its
client and runs them with ``EVALSHA``; redis-py
loads a script again when the server answers ``NOSCRIPT`` (after a restart
or a ``SCRIPT FLUSH``).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any, Dict, Union

from ranch_core.algorithm import MAX_WEIGHT, MIN_RUNTIME, MIN_WEIGHT, RUNTIME_SMOOTHING
from ranch_core.protocols import EXPIRED_BATCH, FANOUT, LOST_AFTER, MAX_BACKOFF, RECLAIM_BATCH, UNPARK_BATCH

from ranch_redis import layout

#: Every operation that is one server-side step.
NAMES = (
    "push",
    "push_many",
    "push_delayed",
    "pop",
    "finish",
    "release_token",
    "sweep_wakeups",
    "wakeups",
    "register_slots",
    "live_slots",
    "ack",
    "release",
    "requeue",
    "extend",
    "reclaim",
    "remove",
    "expire",
    "repair",
    "charge",
    "tag",
    "metadata",
    "status",
    "waiting",
    "wait",
    "set_control",
    "purge_key",
    "revoke",
    "keys_page",
    "why",
    "metrics",
)

#: Constants written into the scripts' text (``__NAME__``) when they are loaded.
CONSTANTS: Dict[str, Union[int, float]] = {
    "__RECLAIM_BATCH__": RECLAIM_BATCH,
    "__EXPIRED_BATCH__": EXPIRED_BATCH,
    "__FANOUT__": FANOUT,
    "__UNPARK_BATCH__": UNPARK_BATCH,
    "__LOST_AFTER__": LOST_AFTER,
    "__MAX_BACKOFF__": MAX_BACKOFF,
    "__NOTIFY_BOUND__": layout.NOTIFY_BOUND,
    "__MIN_WEIGHT__": MIN_WEIGHT,
    "__MAX_WEIGHT__": MAX_WEIGHT,
    "__MIN_RUNTIME__": MIN_RUNTIME,
    "__RUNTIME_SMOOTHING__": RUNTIME_SMOOTHING,
    **{f"__{name}__": value for name, value in layout.REPLIES.items()},
}


def source(name: str) -> str:
    """The full text of script ``name``: ``common.lua`` followed by ``<name>.lua``."""
    if name not in NAMES:
        raise ValueError(f"unknown script {name!r}")
    folder = resources.files(__name__)
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    text = f"{common}\n" + folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    for token, value in CONSTANTS.items():
        text = text.replace(token, repr(value))
    if re.search(r"__[A-Z_]+__", text):
        raise AssertionError(f"script {name!r} names a constant that is not defined")
    return text


@functools.cache
def _loaded(name: str) -> str:
    # Read and rendered once per process: a storage is made per namespace, and
    # rendering all the scripts again took about 15 ms each time.
    return source(name)


def register_all(client: Any) -> Dict[str, Any]:
    """Register every script on ``client``; return ``{name: redis Script}``."""
    return {name: client.register_script(_loaded(name)) for name in NAMES}
