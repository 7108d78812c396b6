"""``TokenBook``: a backlog's wake-up tokens and the worker slots they serve, in memory.

The in-memory half of the wake-up protocol (see the ranch-core README's
"Wake-ups"): tokens in flight (published, not yet taken; id -> deadline),
tokens held by workers (id -> deadline and the task id they run, ``None``
while kept between two calls of a run budget), and the worker slots that
registered themselves (worker -> slots and deadline), and when a wake-up
was last taken from the broker (the queue "moves"). A token is *deferred*
(id -> the time it is due) when it found only calls of rate-limited keys
or delayed calls and its worker publishes it again with a delay, or when a
push of delayed calls minted it for their due time (README, "Per-key
controls" and "Delayed calls"); no two deferred tokens serve one moment
(a token is deferred only if none is due at that time or sooner), and a
deferred token counts as outstanding, not as in flight, until it is due.
The owning storage calls every method with its lock held and passes its
count of runnable waiting calls (calls of parked keys left out).
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Tuple

from ranch_core.models import Finished, WakeupPolicy, WakeupStatus
from ranch_core.protocols import LOST_AFTER, MAX_BACKOFF


class TokenBook:
    """Wake-up tokens of one backlog (not thread-safe: the storage's lock guards it)."""

    def __init__(self) -> None:
        self.flight: Dict[str, float] = {}
        self.held: Dict[str, Tuple[float, Optional[str]]] = {}
        self.holder: Dict[str, str] = {}
        self.deferred: Dict[str, float] = {}
        self.slots: Dict[str, Tuple[int, float]] = {}
        #: When a wake-up was last taken from the broker.
        self.moved = float("-inf")
        #: Retirements of lost tokens since then, and when the last one was.
        self.rounds = 0
        self.retired_at = float("-inf")

    @property
    def outstanding(self) -> int:
        """Tokens in flight, held and deferred."""
        return len(self.flight) + len(self.held) + len(self.deferred)

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

    def delivered(self, token: str, now: float) -> None:
        """A wake-up carrying ``token`` reached a pop: unless it is held (a
        run budget's kept token), the broker queue moves."""
        if token not in self.held:
            self.moved = now
            self.rounds = 0

    def usable(self, token: str, policy: WakeupPolicy) -> bool:
        """Whether a wake-up carrying ``token`` may pop: in flight, kept by
        its holder, or stale with room to adopt it."""
        if token in self.flight or token in self.deferred:
            return True
        held = self.held.get(token)
        if held is not None:
            return held[1] is None
        return self.outstanding < policy.max_wakeups

    def hold(self, token: str, task_id: str, deadline: float) -> None:
        """``token`` now runs ``task_id`` until ``deadline`` (the call's lease)."""
        self.flight.pop(token, None)
        self.deferred.pop(token, None)
        self.unhold(token)
        self.held[token] = (deadline, task_id)
        self.holder[task_id] = token

    def retire(self, token: str) -> None:
        """Forget ``token`` wherever it is."""
        self.flight.pop(token, None)
        self.deferred.pop(token, None)
        self.unhold(token)

    def defer(self, token: str, due: float) -> bool:
        """Keep ``token`` until ``due`` (its worker publishes it with that
        delay) unless another token is deferred to ``due`` or sooner; else retire it."""
        self.flight.pop(token, None)
        self.unhold(token)
        if any(when <= due for other, when in self.deferred.items() if other != token):
            self.deferred.pop(token, None)
            return False
        self.deferred[token] = due
        return True

    def defer_new(self, due: float, policy: WakeupPolicy) -> List[str]:
        """A new token deferred to ``due`` (delayed calls were stored), unless
        another token is deferred to ``due`` or sooner or ``max_wakeups`` are
        outstanding: then ``[]``."""
        if self.outstanding >= policy.max_wakeups or any(when <= due for when in self.deferred.values()):
            return []
        token = os.urandom(8).hex()
        self.deferred[token] = due
        return [token]

    def hand_back(
        self,
        token: str,
        now: float,
        policy: WakeupPolicy,
        keep: bool,
        waiting: int,
        later: Optional[Callable[[], Optional[float]]] = None,
    ) -> Finished:
        """The token's fate after its call: kept, passed on (publish it),
        deferred (nothing runnable, but ``later()`` gives the time a
        rate-limited key's bucket refills, and ``policy.defer``), or retired."""
        # Held, or retired meanwhile (its deadline passed) and neither in flight
        # again nor deferred; kept only while under the bound (a bound that
        # shrank, sized to the fleet, retires the excess).
        have = self.unhold(token) or (token not in self.flight and token not in self.deferred)
        have = have and self.outstanding < policy.max_wakeups
        if have and keep and waiting > 0:
            self.held[token] = (now + policy.ttl, None)
            return Finished(True, (), True)
        if have and waiting > len(self.flight):
            self.flight[token] = now + policy.ttl
            return Finished(True, (token,))
        if have and waiting == 0 and policy.defer and later is not None:
            due = later()
            if due is not None and self.defer(token, due):
                return Finished(True, retry_at=due, deferred=True)
        return Finished(True)

    def sweep(self, now: float, ttl: float) -> None:
        """Retire held tokens whose deadline is ``<= now`` (their worker died),
        then the lost tokens in flight (see
        :meth:`ranch_core.protocols.Backlog.sweep_wakeups`): past their
        deadline while the broker queue has not moved for ``ttl``, with a
        doubling wait between two such retirements; while it moves, only
        :data:`LOST_AFTER` ttls past their deadline. None while every
        registered worker slot holds a token: a late token is then waiting
        for a busy fleet, and replacing it would only pile up no-op wake-ups."""
        for token in [t for t, (deadline, _) in self.held.items() if deadline <= now]:
            self.unhold(token)
        for token in [t for t, due in self.deferred.items() if due <= now]:
            # Due: its delayed wake-up is now in the broker like any other.
            self.flight[token] = self.deferred.pop(token) + ttl
        live_slots = self.live_slots(now)
        if live_slots > 0 and len(self.held) >= live_slots:
            return
        quiet = now - self.moved >= ttl
        if quiet and now - self.retired_at < ttl * 2**self.rounds:
            return
        cutoff = now if quiet else now - LOST_AFTER * ttl
        lost = [t for t, deadline in self.flight.items() if deadline <= cutoff]
        for token in lost:
            del self.flight[token]
        if lost and quiet:
            self.rounds = min(self.rounds + 1, MAX_BACKOFF)
            self.retired_at = now

    def extend(self, task_id: str, deadline: float) -> None:
        """The lease of ``task_id`` now ends at ``deadline``: so does its token's."""
        token = self.holder.get(task_id)
        if token is not None:
            self.held[token] = (deadline, task_id)

    def status(self) -> WakeupStatus:
        """Tokens in flight and held."""
        return WakeupStatus(in_flight=len(self.flight), held=len(self.held), deferred=len(self.deferred))

    def live_slots(self, now: float) -> int:
        """The slots of the workers whose registration has not run out at ``now``."""
        return sum(count for count, deadline in self.slots.values() if deadline > now)

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record that ``worker`` runs ``slots`` calls at once until ``now + ttl``;
        forget workers whose registration ran out; return the live total."""
        self.slots[worker] = (slots, now + ttl)
        for name in [w for w, (_, deadline) in self.slots.items() if deadline <= now]:
            del self.slots[name]
        return sum(count for count, _ in self.slots.values())
