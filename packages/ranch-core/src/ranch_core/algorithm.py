"""The fair-scheduling rule, as pure functions.

Ranch uses start-time fair queueing (a.k.a. stride scheduling) with one unit
of work per task:

* Every key has a *pass*: the virtual time at which it is next due.
* To dispatch, take the active key (one with tasks waiting) with the smallest
  pass. Ties go to the key served least recently (a key never served first),
  then to the smaller key, so the order is total and deterministic.
* The pass the served key had is the new *virtual time*; its pass then grows
  by its weight. A weight of 0.5 grows half as fast as 1.0, so that key is
  due twice as often: lower weight, more service.
* A key that turns active (its first task arrives, or a task comes back to an
  empty key) starts at ``max(own pass, virtual time)``: it joins the current
  round instead of cashing in credit saved while it was idle (no banking),
  and it never waits for the backlog of others (it is due at once).

With equal weights this is exact least-recently-served order (round robin).
With any weights, two keys that stay backlogged differ in weighted service
``served * weight`` by at most the sum of their weights (bounded lag).

Weights are bounded to ``[MIN_WEIGHT, MAX_WEIGHT]`` (as Temporal bounds its
fairness weights): one dispatch moves a pass, and so virtual time, by at most
``MAX_WEIGHT``. Passes are doubles: below ``2**36`` their spacing is at most
``2**-17``, so a charge ``pass + weight`` is off by at most ``2**-18`` (0.4 %
of the smallest weight). Virtual time gets there only after ``2**36 / 1000 =
6.9e7`` dispatches that each cost the largest weight, or ``6.9e10`` at the
default weight; weights of 0.01 and up stay within 1 % until ``2**40``
(``1.1e12`` dispatches at weight 1). A charge is lost entirely
(``pass + weight == pass``) only past ``2**44`` for the smallest weight and
``2**54`` for the default. Virtual time is not rebased; the package README
("Weights and precision") has the measurements.

Storage implementations keep the active keys in a structure ordered by
:func:`selection_order` (a heap, a Redis sorted set) so that choosing costs
O(log K) and never depends on how many tasks wait behind a key.
"""

from __future__ import annotations

from typing import Optional, Tuple

#: ``last_served_seq`` of a key that was never served; sorts before any real serve.
NEVER_SERVED = 0

#: Default weight of a key that was never given one.
DEFAULT_WEIGHT = 1.0

#: Smallest weight a key can have (1000x the service of the default weight).
MIN_WEIGHT = 0.001
#: Largest weight a key can have (a thousandth of the default's service).
MAX_WEIGHT = 1000.0

SelectionOrder = Tuple[float, int, str]


def selection_order(pass_: float, last_served_seq: int, key: str) -> SelectionOrder:
    """Sort key of an active key: smallest first is served next."""
    return (pass_, last_served_seq, key)


def activation_pass(own_pass: float, virtual_time: float) -> float:
    """Pass of a key that turns active: it joins the current round, no earlier."""
    return max(own_pass, virtual_time)


def charged_pass(pass_: float, weight: float) -> float:
    """Pass of a key after one dispatch of weight ``weight``."""
    return pass_ + weight


# -- runtime cost (README, "Fair by time") ----------------------------------

#: How much one measured run time moves a moving average: ``e += 0.25 * (c - e)``
#: (a dyadic constant: every storage computes the same doubles).
RUNTIME_SMOOTHING = 0.25

#: Shortest run time charged, in seconds: a call measured as 0 s still moves
#: its key's pass, so no key is ever free to serve.
MIN_RUNTIME = 0.0001


def runtime(seconds: float) -> float:
    """The run time charged for a call measured at ``seconds``."""
    return max(seconds, MIN_RUNTIME)


def smoothed(average: Optional[float], seconds: float) -> float:
    """A moving average of run times after one more run of ``seconds`` (the
    first run is the average)."""
    return seconds if average is None else average + RUNTIME_SMOOTHING * (seconds - average)


def corrected_pass(pass_: float, estimate: float, seconds: float, weight: float) -> float:
    """Pass of a key whose call was charged ``estimate * weight`` at dispatch
    and ran ``seconds``."""
    return pass_ + (seconds - estimate) * weight
