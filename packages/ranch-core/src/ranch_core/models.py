"""The values Ranch hands out: tasks, per-key metadata and system status."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import attrs

from ranch_core.keys import Key


@attrs.frozen
class ScheduledTask:
    """One stored call, as pushed and as popped.

    ``payload`` is whatever the producer pushed (after a round trip through
    the storage's serializer). ``expires_at`` is an absolute time on the
    scheduler's clock, or ``None`` for a task that never expires.
    ``not_before`` (same clock) makes a *delayed* call: stored at once, it
    joins its key's backlog only when that time comes (``None``, or a time
    not after ``enqueued_at``: at once). A popped task has ``None``: it is due,
    and its ``enqueued_at`` is the time it became due (when it started
    waiting in its key), so wait times count from there.
    """

    task_id: str
    key: Key
    payload: Any
    enqueued_at: float
    expires_at: Optional[float] = None
    not_before: Optional[float] = None

    def expired(self, now: float) -> bool:
        """Whether the task must be dropped instead of run at time ``now``."""
        return self.expires_at is not None and now >= self.expires_at


@attrs.frozen
class PopResult:
    """What one storage pop did.

    ``task`` is the leased fair choice or ``None``. ``expired`` are tasks
    dropped because their expiry passed; ``reclaimed`` are leases that ran out
    and were put back at the head of their key. A ``None`` task with expired
    tasks means the storage stopped early and the caller should pop again.
    """

    task: Optional[ScheduledTask]
    expired: Tuple[ScheduledTask, ...] = ()
    reclaimed: Tuple[ScheduledTask, ...] = ()
    #: Wake-up token ids minted by this step (fan-out): publish one wake-up each.
    minted: Tuple[str, ...] = ()
    #: With no task: the earliest time a call of a rate-limited key becomes
    #: runnable or a delayed call is due (``None``: no such call waits). See
    #: the README's "Per-key controls" and "Delayed calls".
    retry_at: Optional[float] = None
    #: The token of this pop was kept for ``retry_at`` (a :class:`WakeupPolicy`
    #: with ``defer``): publish it again with a delay of ``retry_at - now``.
    deferred: bool = False


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ValueError(f"{attribute.name} must be a positive number, not {value!r}")
    if value == float("inf"):
        raise ValueError(f"{attribute.name} must be finite, not {value!r}")


@attrs.frozen
class WakeupPolicy:
    """How a storage step manages a backlog's wake-up tokens (see the README's "Wake-ups").

    ``max_wakeups`` bounds the tokens outstanding (in flight in the broker
    plus held by workers); ``ttl`` is how long a token may travel in the
    broker before :meth:`~ranch_core.protocols.Backlog.sweep_wakeups`
    retires it as lost and mints a replacement.
    """

    max_wakeups: int = attrs.field(default=64, validator=_positive)
    ttl: float = attrs.field(default=60.0, validator=_positive)
    #: The caller can publish a wake-up with a delay: a token that finds only
    #: rate-limited or delayed calls is kept for the time they become runnable
    #: (:attr:`PopResult.deferred`) instead of being retired, and a push of
    #: delayed calls may return a token deferred to their due time.
    defer: bool = False


@attrs.frozen
class RuntimeCost:
    """How a storage charges a dispatch by run time (``FairScheduler(cost="runtime")``,
    the README's "Fair by time").

    At dispatch a key is charged its moving average of measured run times
    times its weight; a key never measured is charged the storage-wide
    average, and before any call was measured ``first_estimate`` seconds.
    The finish corrects the charge to the measured run time.
    """

    first_estimate: float = attrs.field(default=1.0, validator=_positive)


@attrs.frozen
class Finished:
    """What one :meth:`~ranch_core.protocols.Backlog.finish` step did.

    ``done``: the call held a lease (it was acknowledged or requeued);
    ``False`` means the lease had run out and nothing was written.
    ``publish``: token ids the caller publishes now, one wake-up each (the
    passed-on token, or a token minted for a requeued call).
    ``kept``: the token stays held by the caller (``keep_token=True`` and
    calls wait): pop again with it, or hand it back with
    :meth:`~ranch_core.protocols.Backlog.release_token`.
    ``deferred``: nothing is runnable but a rate-limited key's bucket
    refills at ``retry_at``, and the policy can delay wake-ups (``defer``):
    the token was kept for that time, as a pop that finds the same keeps it
    (:attr:`PopResult.deferred`); publish it with a delay of ``retry_at - now``.
    """

    done: bool
    publish: Tuple[str, ...] = ()
    kept: bool = False
    retry_at: Optional[float] = None
    deferred: bool = False


@attrs.frozen
class WakeupStatus:
    """A backlog's tokens: ``in_flight`` (published, not taken) and ``held`` (taken by a worker)."""

    in_flight: int = 0
    held: int = 0
    #: Kept for the time a rate-limited call becomes runnable (published with a delay).
    deferred: int = 0

    @property
    def outstanding(self) -> int:
        """Tokens counted against ``max_wakeups``."""
        return self.in_flight + self.held + self.deferred


@attrs.frozen
class RateLimit:
    """A key's rate limit: a token bucket of ``burst`` calls refilled at
    ``per_second`` calls a second. ``text`` is the rate as given (``"10/m"``).

    Build it with :func:`ranch_core.validation.check_rate_limit`.
    """

    per_second: float
    burst: int = 1
    text: str = ""

    @property
    def interval(self) -> float:
        """Seconds between two calls at the steady rate."""
        return 1.0 / self.per_second


@attrs.frozen
class LRUKeyMetadata:
    """What Ranch knows about one key; passed to custom weight functions.

    ``last_served`` is the scheduler-clock time of the key's last dispatch,
    ``None`` if it was never served. The per-key controls (README, "Per-key
    controls") are the ones in force: the key's own setting, else the
    scheduler's default: ``concurrency_limit`` (``None``: no cap),
    ``running`` (calls of the key leased now), ``rate_limit`` (as given,
    e.g. ``"10/s"``; ``None``: no limit), ``paused`` and ``max_backlog``
    (``None``: no limit). A string key's metadata is its whole group's
    (README, "Two-level keys"): its controls are the group's, and
    ``pending_tasks``, ``running`` and ``delayed_tasks`` count every member.
    """

    key: Key
    weight: float = 1.0
    last_served: Optional[float] = None
    pending_tasks: int = 0
    served_total: int = 0
    tags: Dict[str, str] = attrs.field(factory=dict)
    custom_data: Dict[str, Any] = attrs.field(factory=dict)
    concurrency_limit: Optional[int] = None
    running: int = 0
    rate_limit: Optional[str] = None
    paused: bool = False
    max_backlog: Optional[int] = None
    #: Delayed calls of the key not yet due (not in ``pending_tasks``).
    delayed_tasks: int = 0
    #: The key's moving average of measured run times, in seconds
    #: (``cost="runtime"``; ``None`` until a call of the key was measured).
    run_estimate: Optional[float] = None

    @property
    def lru_key(self) -> Key:
        """The key (celery-ranch's name for it)."""
        return self.key

    @property
    def timestamp(self) -> Optional[float]:
        """``last_served`` under celery-ranch's name: the time of the key's last dispatch."""
        return self.last_served

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


@attrs.frozen
class SystemStatus:
    """Counters of one storage. Every field is O(1) to read."""

    backlog_size: int
    active_keys: int
    leased: int
    expired_total: int
    served_total: int
    #: Delayed calls not yet due (not in ``backlog_size``).
    delayed: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)
