"""``Step``: one round trip to Redis, as the storage's operations describe it.

Each operation of the Redis storage is written once, as a generator that
yields the round trips it needs and receives their replies
(:class:`~ranch_redis.operations.RedisOperations`); it does no I/O. The
blocking :class:`~ranch_redis.RedisStorage` and the asyncio
:class:`~ranch_redis.AsyncRedisStorage` each drive those generators with
their own client, so both run the same scripts with the same arguments and
read the replies the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Sequence, TypeVar

import attrs

T = TypeVar("T")


@attrs.frozen
class Step:
    """A Lua script of :mod:`ranch_redis.scripts` (``command=False``, ``KEYS[1]``
    is the namespace's stats key) or a plain Redis command, with its
    arguments given whether this attempt is a retry (a script recognises its
    own earlier write by that flag), and what to say if it fails for good
    (``operation``, default ``name``, and ``note``)."""

    name: str
    args: Callable[[bool], Sequence[Any]]
    command: bool = False
    note: str = ""
    operation: str = ""


#: An operation: yields steps, receives each reply, returns its result.
Steps = Generator[Step, Any, T]


def script(name: str, *args: Any, note: str = "") -> Step:
    """A script step whose arguments do not depend on the retry flag."""
    return Step(name, lambda retry: args, note=note)


def command(*args: Any) -> Step:
    """A plain Redis command (``HSET``, ``HGETALL``, ...)."""
    return Step(str(args[0]), lambda retry: args, command=True)
