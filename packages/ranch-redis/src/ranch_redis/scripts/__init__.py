"""The Lua scripts of :class:`~ranch_redis.RedisStorage`, one file per atomic step.

Each ``<name>.lua`` beside this module is one operation; ``common.lua`` (key
names, the body format, activation and lease reclaim) is prepended to each,
and ``__RECLAIM_BATCH__``/``__EXPIRED_BATCH__`` are replaced by ranch-core's
constants. ``KEYS[1]`` of every script is the namespace's ``stats`` key.
Scripts are registered once per client and run with ``EVALSHA``; redis-py
loads a script again when the server answers ``NOSCRIPT`` (after a restart
or a ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Dict

from ranch_core.protocols import EXPIRED_BATCH, RECLAIM_BATCH

#: Every operation that is one server-side step.
NAMES = (
    "push",
    "pop",
    "ack",
    "release",
    "requeue",
    "extend",
    "reclaim",
    "remove",
    "charge",
    "tag",
    "metadata",
    "status",
    "waiting",
)

#: Constants written into the scripts' text (``__NAME__``) when they are loaded.
CONSTANTS = {"__RECLAIM_BATCH__": RECLAIM_BATCH, "__EXPIRED_BATCH__": EXPIRED_BATCH}


def source(name: str) -> str:
    """The full text of script ``name``: ``common.lua`` followed by ``<name>.lua``."""
    if name not in NAMES:
        raise ValueError(f"unknown script {name!r}")
    folder = resources.files(__name__)
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    text = f"{common}\n" + folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    for token, value in CONSTANTS.items():
        text = text.replace(token, str(int(value)))
    return text


def register_all(client: Any) -> Dict[str, Any]:
    """Register every script on ``client``; return ``{name: redis Script}``."""
    return {name: client.register_script(source(name)) for name in NAMES}
