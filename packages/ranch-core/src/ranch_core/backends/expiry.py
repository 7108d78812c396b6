"""An index of expiring tasks: which are due at ``now``, and how many.

Entries are ``(expires_at, task_id)``, kept sorted in blocks of at most
``2 * LOAD`` (a list of short sorted lists, the layout of
``sortedcontainers.SortedList``): adding and removing cost O(log N) compares
plus a move of at most ``2 * LOAD`` pointers, instead of the O(N) of one
sorted list. Counting the due entries walks only the blocks that are wholly
due: O(log N + D / LOAD) for D due entries, and D stays small because the
scheduler drops due tasks whenever it counts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from typing import Any, List, Tuple

Entry = Tuple[float, str]

#: Half the largest block.
LOAD = 256


class _After:
    """Sorts after every string: ``(t, AFTER)`` follows every entry expiring at ``t``."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return True


_AFTER = _After()


class ExpiryIndex:
    """``(expires_at, task_id)`` entries in order; not thread-safe (the storage locks)."""

    __slots__ = ("_blocks", "_len", "_maxes")

    def __init__(self) -> None:
        self._blocks: List[List[Entry]] = []
        self._maxes: List[Entry] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, expires_at: float, task_id: str) -> None:
        """Insert an entry (the caller never inserts one twice)."""
        entry = (expires_at, task_id)
        self._len += 1
        if not self._blocks:
            self._blocks.append([entry])
            self._maxes.append(entry)
            return
        index = bisect_left(self._maxes, entry)
        if index == len(self._maxes):
            index -= 1
            block = self._blocks[index]
            block.append(entry)
            self._maxes[index] = entry
        else:
            block = self._blocks[index]
            insort(block, entry)
        if len(block) > 2 * LOAD:
            self._blocks[index : index + 1] = [block[:LOAD], block[LOAD:]]
            self._maxes[index : index + 1] = [block[LOAD - 1], block[-1]]

    def discard(self, expires_at: float, task_id: str) -> bool:
        """Remove an entry; ``False`` if it was not there."""
        entry = (expires_at, task_id)
        index = bisect_left(self._maxes, entry)
        if index == len(self._maxes):
            return False
        block = self._blocks[index]
        position = bisect_left(block, entry)
        if block[position] != entry:
            return False
        del block[position]
        self._len -= 1
        if not block:
            del self._blocks[index]
            del self._maxes[index]
        elif position == len(block):
            self._maxes[index] = block[-1]
        return True

    def count_due(self, now: float) -> int:
        """How many entries have ``expires_at <= now``."""
        probe: Any = (now, _AFTER)
        full = bisect_right(self._maxes, probe)
        total = sum(len(block) for block in self._blocks[:full])
        if full < len(self._blocks):
            total += bisect_right(self._blocks[full], probe)
        return total

    def due(self, now: float, limit: int) -> List[Entry]:
        """The first ``limit`` entries with ``expires_at <= now``, in order."""
        out: List[Entry] = []
        for block in self._blocks:
            for entry in block:
                if entry[0] > now or len(out) >= limit:
                    return out
                out.append(entry)
        return out
