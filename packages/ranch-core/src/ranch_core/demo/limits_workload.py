"""What the ``limits`` scenario sends and which controls it sets: :class:`LimitsWorkload`.

Next to a few free *interactive* keys, three keys carry one control each: a
flood capped at a few running calls (``set_concurrency_limit``), a partner
API held to a rate (``set_rate_limit``), and a key paused from the start and
resumed midway (``pause_key``, ``resume_key``). The scenario runs the same
calls once without any control and once with them.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import attrs

from ranch_core import validation
from ranch_core.demo.workload import _check_keys, _check_positive_int, _check_seconds, _to_keys
from ranch_core.models import RateLimit
from ranch_core.scheduler import FairScheduler


def _check_rate(instance: LimitsWorkload, _attribute: object, value: str) -> None:
    validation.check_rate_limit(value, instance.burst)


@attrs.frozen
class LimitsWorkload:
    """The calls of the ``limits`` scenario and the controls of its three limited keys.

    ``bulk_calls`` for ``bulk_key`` (at most ``bulk_limit`` running at once),
    ``rate_calls`` for ``rate_key`` (``rate``, ``burst``: Celery's syntax) and
    ``paused_calls`` for ``paused_key`` (paused until ``resume_after``
    seconds into the run) are sent first; ``calls_per_key`` for each
    interactive key follow ``interactive_delay`` seconds later, round robin,
    while the flood runs. Each call sleeps ``work_seconds`` on its worker.
    """

    bulk_calls: int = attrs.field(default=1000, validator=_check_positive_int("bulk_calls"))
    bulk_limit: int = attrs.field(default=2, validator=_check_positive_int("bulk_limit"))
    rate_calls: int = attrs.field(default=30, validator=_check_positive_int("rate_calls"))
    burst: int = attrs.field(default=1, validator=_check_positive_int("burst"))
    rate: str = attrs.field(default="20/s", validator=_check_rate)
    paused_calls: int = attrs.field(default=5, validator=_check_positive_int("paused_calls"))
    resume_after: float = attrs.field(default=0.5, validator=_check_seconds("resume_after"))
    interactive_keys: Tuple[str, ...] = attrs.field(
        default=("alice", "bob", "carol"), converter=_to_keys, validator=_check_keys
    )
    calls_per_key: int = attrs.field(default=3, validator=_check_positive_int("calls_per_key"))
    work_seconds: float = attrs.field(default=0.002, validator=_check_seconds("work_seconds"))
    interactive_delay: float = attrs.field(default=0.05, validator=_check_seconds("interactive_delay"))
    bulk_key: str = "bulk"
    rate_key: str = "api"
    paused_key: str = "paused"

    def __attrs_post_init__(self) -> None:
        limited = self.limited_keys
        if not all(isinstance(key, str) and key for key in limited) or len(set(limited)) != 3:
            raise ValueError("bulk_key, rate_key and paused_key must be three distinct non-empty strings")
        if set(limited) & set(self.interactive_keys):
            raise ValueError("interactive_keys must not include a limited key")

    @property
    def limited_keys(self) -> List[str]:
        """The capped, the rate-limited and the paused key, in that order."""
        return [self.bulk_key, self.rate_key, self.paused_key]

    @property
    def keys(self) -> List[str]:
        """The limited keys, then the interactive keys."""
        return [*self.limited_keys, *self.interactive_keys]

    @property
    def total(self) -> int:
        """Number of calls one run sends."""
        return (
            self.bulk_calls
            + self.rate_calls
            + self.paused_calls
            + len(self.interactive_keys) * self.calls_per_key
        )

    @property
    def rate_limit(self) -> RateLimit:
        """``rate`` and ``burst`` as the scheduler reads them (calls per second)."""
        checked = validation.check_rate_limit(self.rate, self.burst)
        assert checked is not None  # a str rate always gives a limit
        return checked

    def controls(self) -> Dict[str, str]:
        """Key -> its control in words, for the table (``"-"``: none)."""
        burst = f", burst {self.burst}" if self.burst > 1 else ""
        described = {
            self.bulk_key: f"cap {self.bulk_limit}",
            self.rate_key: f"{self.rate}{burst}",
            self.paused_key: f"resumed at {self.resume_after:g} s",
        }
        return {key: described.get(key, "-") for key in self.keys}

    def plan(self) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
        """``(first, interactive)``: the ``(key, index)`` pairs in sending order.

        ``first`` is the flood, then the rate-limited key's calls, then the
        paused key's; ``interactive`` is round robin over the interactive keys.
        """
        first: List[Tuple[str, int]] = []
        for key, calls in (
            (self.bulk_key, self.bulk_calls),
            (self.rate_key, self.rate_calls),
            (self.paused_key, self.paused_calls),
        ):
            base = len(first)
            first.extend((key, base + n) for n in range(calls))
        interactive = []
        index = len(first)
        for _ in range(self.calls_per_key):
            for key in self.interactive_keys:
                interactive.append((key, index))
                index += 1
        return first, interactive

    def apply(self, scheduler: FairScheduler) -> None:
        """Set the three controls on ``scheduler`` (the paused key starts paused)."""
        scheduler.set_concurrency_limit(self.bulk_key, self.bulk_limit)
        scheduler.set_rate_limit(self.rate_key, self.rate, burst=self.burst)
        scheduler.pause_key(self.paused_key)
