"""``TokenBook``: a backlog's wake-up tokens and the worker slots they serve, in memory.

The in-memory half of the wake-up protocol (see the ranch-core README's
"Wake-ups"): tokens in flight (published, not yet taken; id -> deadline),
tokens held by workers (id -> deadline and the task id they run, ``None``
while kept between two calls of a run budget), and the worker slots that
registered themselves (worker -> slots and deadline). The owning storage
calls every method with its lock held and passes its count of waiting calls.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from ranch_core.models import Finished, WakeupPolicy, WakeupStatus


class TokenBook:
    """Wake-up tokens of one backlog (not thread-safe: the storage's lock guards it)."""

    def __init__(self) -> None:
        self.flight: Dict[str, float] = {}
        self.held: Dict[str, Tuple[float, Optional[str]]] = {}
        self.holder: Dict[str, str] = {}
        self.slots: Dict[str, Tuple[int, float]] = {}

    @property
    def outstanding(self) -> int:
        """Tokens in flight plus tokens held."""
        return len(self.flight) + len(self.held)

    def mint(self, now: float, policy: WakeupPolicy, limit: int, waiting: int) -> List[str]:
        """Up to ``limit`` new tokens in flight, while fewer are in flight than
        calls wait and fewer than ``max_wakeups`` are outstanding."""
        minted: List[str] = []
        while len(minted) < limit and len(self.flight) < waiting and self.outstanding < policy.max_wakeups:
            token = os.urandom(8).hex()
            self.flight[token] = now + policy.ttl
            minted.append(token)
        return minted

    def unhold(self, token: str) -> bool:
        """Retire a held token; ``False`` if it was not held."""
        entry = self.held.pop(token, None)
        if entry is None:
            return False
        if entry[1] is not None and self.holder.get(entry[1]) == token:
            del self.holder[entry[1]]
        return True

    def usable(self, token: str, policy: WakeupPolicy) -> bool:
        """Whether a wake-up carrying ``token`` may pop: in flight, kept by
        its holder, or stale with room to adopt it."""
        if token in self.flight:
            return True
        held = self.held.get(token)
        if held is not None:
            return held[1] is None
        return self.outstanding < policy.max_wakeups

    def hold(self, token: str, task_id: str, deadline: float) -> None:
        """``token`` now runs ``task_id`` until ``deadline`` (the call's lease)."""
        self.flight.pop(token, None)
        self.unhold(token)
        self.held[token] = (deadline, task_id)
        self.holder[task_id] = token

    def retire(self, token: str) -> None:
        """Forget ``token`` wherever it is."""
        self.flight.pop(token, None)
        self.unhold(token)

    def hand_back(self, token: str, now: float, policy: WakeupPolicy, keep: bool, waiting: int) -> Finished:
        """The token's fate after its call: kept, passed on (publish it), or retired."""
        if self.unhold(token):
            have = True
        else:
            # Retired meanwhile (its deadline passed): taken back if there is room.
            have = token not in self.flight and self.outstanding < policy.max_wakeups
        if have and keep and waiting > 0:
            self.held[token] = (now + policy.ttl, None)
            return Finished(True, (), True)
        if have and waiting > len(self.flight):
            self.flight[token] = now + policy.ttl
            return Finished(True, (token,))
        return Finished(True)

    def sweep(self, now: float) -> None:
        """Retire held tokens whose deadline is ``<= now`` (their worker died),
        then in-flight tokens whose deadline is ``<= now`` (lost), unless every
        registered worker slot holds a token: then a late token is waiting for
        a busy fleet, not lost, and replacing it would only pile up no-op
        wake-ups in the broker while the fleet stays saturated."""
        for token in [t for t, (deadline, _) in self.held.items() if deadline <= now]:
            self.unhold(token)
        live_slots = sum(count for count, deadline in self.slots.values() if deadline > now)
        if live_slots > 0 and len(self.held) >= live_slots:
            return
        for token in [t for t, deadline in self.flight.items() if deadline <= now]:
            del self.flight[token]

    def extend(self, task_id: str, deadline: float) -> None:
        """The lease of ``task_id`` now ends at ``deadline``: so does its token's."""
        token = self.holder.get(task_id)
        if token is not None:
            self.held[token] = (deadline, task_id)

    def status(self) -> WakeupStatus:
        """Tokens in flight and held."""
        return WakeupStatus(in_flight=len(self.flight), held=len(self.held))

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record that ``worker`` runs ``slots`` calls at once until ``now + ttl``;
        forget workers whose registration ran out; return the live total."""
        self.slots[worker] = (slots, now + ttl)
        for name in [w for w, (_, deadline) in self.slots.items() if deadline <= now]:
            del self.slots[name]
        return sum(count for count, _ in self.slots.values())
