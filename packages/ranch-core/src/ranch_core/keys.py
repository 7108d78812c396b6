"""The two shapes of a key: a string, or a pair ``(group, member)``.

A string key is one level, as in celery-ranch: ``"tenant_a"``. A pair is two
levels: ``("tenant_a", "user_42")`` is the member ``"user_42"`` of the group
``"tenant_a"``. Selection is fair across groups first, then across the
members of the chosen group (README, "Two-level keys").

A string key names a group too: the calls pushed under ``"tenant_a"`` are
the group's *own* member (:data:`OWN`), one member among the group's pairs,
and ``set_weight("tenant_a", w)`` weights the whole group. So a key space of
strings alone behaves exactly as a flat one: every group has one member.
"""

from __future__ import annotations

from typing import Tuple, Union

#: A key: a string (one level) or a ``(group, member)`` pair (two levels).
Key = Union[str, Tuple[str, str]]

#: The member name of the calls pushed under a group's own (string) key.
#: Members of pairs are non-empty, so it is never a pair's member.
OWN = ""


def group_of(key: Key) -> str:
    """The group a key belongs to: the key itself for a string key."""
    return key if isinstance(key, str) else key[0]


def member_of(key: Key) -> str:
    """The key's member name within its group: :data:`OWN` for a string key."""
    return OWN if isinstance(key, str) else key[1]


def is_pair(key: Key) -> bool:
    """Whether ``key`` has two levels."""
    return not isinstance(key, str)


def one_level(key: Key) -> str:
    """``key``, which must be a string key (for code that takes no pairs)."""
    if not isinstance(key, str):
        raise TypeError(f"a one-level (str) key was expected here, not {key!r}")
    return key


def key_order(key: Key) -> Tuple[str, str]:
    """A sort key that orders keys of both shapes: by group, then member (a
    group's own calls first)."""
    return (key, OWN) if isinstance(key, str) else key


def key_text(key: Key) -> str:
    """A key as people read it: ``tenant_a`` or ``tenant_a/user_42`` (for
    messages and tables; not an encoding, since a group may contain ``/``)."""
    return key if isinstance(key, str) else f"{key[0]}/{key[1]}"
