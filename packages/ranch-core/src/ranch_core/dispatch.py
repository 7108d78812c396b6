"""What the Celery and Dramatiq adapters share: one fairness domain ("backlog").

An adapter stores each call with :meth:`FairDispatcher.submit`, which writes
the call first and then publishes one *wake-up* message through the queue
(the adapter's ``wake`` callable). The worker that receives a wake-up calls
:meth:`FairDispatcher.take`, which makes the fair choice at that moment, and
runs the chosen call right there, then :meth:`FairDispatcher.finish`. One
wake-up per stored call: reclaimed leases get a new wake-up, an expired call
leaves a wake-up that finds nothing (a no-op).

:class:`LeaseKeeper` is the worker-side thread that renews the leases of
running calls and puts back the calls of dead workers.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set

import attrs

from ranch_core import validation
from ranch_core.errors import RanchError
from ranch_core.models import ScheduledTask
from ranch_core.scheduler import FairScheduler

logger = logging.getLogger("ranch_core.dispatch")

Wake = Callable[[], None]
TaskCallback = Callable[[ScheduledTask], None]


@attrs.frozen
class Call:
    """A stored call: positional and keyword arguments plus adapter options.

    ``options`` holds what the adapter needs to run the call as the user sent
    it (e.g. Celery's headers, Dramatiq's message options); ``retries`` counts
    earlier attempts. Everything must be JSON-encodable.
    """

    args: List[Any] = attrs.field(factory=list, converter=list)
    kwargs: Dict[str, Any] = attrs.field(factory=dict, converter=dict)
    options: Dict[str, Any] = attrs.field(factory=dict, converter=dict)
    retries: int = 0

    def to_payload(self) -> Dict[str, Any]:
        """The JSON-ready form stored in the backlog."""
        return {"args": self.args, "kwargs": self.kwargs, "options": self.options, "retries": self.retries}

    @classmethod
    def from_payload(cls, payload: Any) -> Call:
        """Rebuild a call; ``TypeError``/``ValueError`` if ``payload`` is not one."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"stored call is a {type(payload).__name__}, not a mapping")
        args, kwargs = payload.get("args", []), payload.get("kwargs", {})
        options, retries = payload.get("options", {}), payload.get("retries", 0)
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(options, dict):
            raise TypeError("stored call has malformed args, kwargs or options")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"stored call has a bad retry count {retries!r}")
        return cls(args=args, kwargs=kwargs, options=options, retries=retries)


@attrs.frozen
class Claimed:
    """A call taken for running: the leased task and its decoded call."""

    task: ScheduledTask
    call: Call

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def key(self) -> str:
        return self.task.key


def check_tags(tags: Any) -> Dict[str, str]:
    """``None`` or a mapping of non-empty tag names to string values."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of str to str, not {type(tags).__name__}")
    return {
        validation.check_name(name, "tag name"): validation.check_tag_value(value, f"tag {name!r}")
        for name, value in tags.items()
    }


class FairDispatcher:
    """One backlog as an adapter drives it (see the module docstring).

    ``on_expired`` is called for every call dropped as expired (adapters mark
    its result ``REVOKED``/failed so nobody waits forever).
    """

    def __init__(
        self,
        scheduler: FairScheduler,
        wake: Wake,
        *,
        on_expired: Optional[TaskCallback] = None,
    ) -> None:
        self.scheduler = scheduler
        self.wake = wake
        self.on_expired = on_expired
        scheduler.on_reclaimed = self._reclaimed
        scheduler.on_expired = self._expired
        self._running: Set[str] = set()
        self._running_lock = threading.Lock()

    # -- producer side -----------------------------------------------------

    def submit(
        self,
        key: str,
        call: Call,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_id: Optional[str] = None,
    ) -> str:
        """Validate, store, then publish one wake-up; return the call's task id.

        Every argument is checked before anything is written, and the payload
        is encoded by the storage before it writes. If the wake-up cannot be
        published, the stored call is removed again and the error re-raised:
        no call is left without a message.
        """
        validation.check_key(key, "lru_key")
        priority_weight = validation.check_optional_weight(priority_weight, "priority_weight")
        expiry = validation.check_expiry(expiry)
        checked_tags = check_tags(tags)
        task_id = self.scheduler.push(
            key, call.to_payload(), weight=priority_weight, expiry=expiry, task_id=task_id
        )
        for name, value in checked_tags.items():
            self.scheduler.add_tag(key, name, value)
        try:
            self.wake()
        except BaseException:
            self.scheduler.remove(key, task_id)
            raise
        return task_id

    # -- worker side -------------------------------------------------------

    def take(self) -> Optional[Claimed]:
        """The fair choice now (leased), or ``None``: this wake-up is a no-op.

        A stored call that cannot be decoded is reported, acknowledged (so it
        does not come back) and skipped.
        """
        while True:
            task = self.scheduler.pop()
            if task is None:
                return None
            try:
                return Claimed(task, Call.from_payload(task.payload))
            except (TypeError, ValueError) as exc:
                logger.error("ranch: dropping corrupt call %s of key %r: %s", task.task_id, task.key, exc)
                self.scheduler.ack(task.task_id)

    @contextmanager
    def running(self, claimed: Claimed) -> Iterator[Claimed]:
        """Mark a call as running here so :class:`LeaseKeeper` renews its lease."""
        with self._running_lock:
            self._running.add(claimed.task_id)
        try:
            yield claimed
        finally:
            with self._running_lock:
                self._running.discard(claimed.task_id)

    def finish(self, claimed: Claimed) -> None:
        """The call ended (success or final failure): drop its lease."""
        if not self.scheduler.ack(claimed.task_id):
            logger.warning(
                "ranch: call %s finished after its lease ran out; it may have run twice", claimed.task_id
            )

    def requeue(self, claimed: Claimed, *, retries: Optional[int] = None) -> bool:
        """Retry a call now: back to the tail of its key, then one wake-up.

        Finishing the lease and storing the retry are one atomic storage step
        (:meth:`FairScheduler.requeue`), so a crash cannot lose the call. The
        call keeps its task id, so results land under the id its producer
        holds. ``False`` if the lease had already run out (the call went back
        on its own and has its wake-up). If the wake-up cannot be published,
        the retry is removed again and the error raised: the adapter then
        reports the call as failed, as its queue does for a retry it cannot send.
        """
        call = attrs.evolve(claimed.call, retries=claimed.call.retries + 1 if retries is None else retries)
        if not self.scheduler.requeue(claimed.task, call.to_payload()):
            logger.warning(
                "ranch: lease of call %s ran out before its retry; it went back already", claimed.task_id
            )
            return False
        try:
            self.wake()
        except BaseException:
            self.scheduler.remove(claimed.key, claimed.task_id)
            raise
        return True

    def deferred(self, claimed: Claimed, call: Call) -> Dict[str, Any]:
        """The JSON body of a delayed retry: the adapter publishes it with its
        queue's delay (Celery ``countdown``, Dramatiq ``delay``), finishes the
        lease, and hands the body to :meth:`resubmit` when it is due."""
        return {
            "key": claimed.key,
            "task_id": claimed.task_id,
            "call": call.to_payload(),
            "expires_at": claimed.task.expires_at,
        }

    def resubmit(self, body: Mapping[str, Any]) -> Optional[str]:
        """Store a call coming back from :meth:`deferred` (and publish its wake-up).

        ``None`` if the body is malformed (reported) or the call is stored
        already (its worker died after deferring it and the lease put it back).
        """
        try:
            key, task_id = body["key"], body["task_id"]
            call = Call.from_payload(body["call"])
            expires_at = body.get("expires_at")
            if expires_at is not None and (
                isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))
            ):
                raise TypeError("expires_at is not a number")
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("ranch: dropping a malformed delayed retry: %s", exc)
            return None
        expiry = None if expires_at is None else max(0.0, float(expires_at) - self.scheduler.clock())
        try:
            return self.submit(key, call, expiry=expiry, task_id=task_id)
        except ValueError as exc:
            logger.warning("ranch: not storing delayed retry of call %s again: %s", task_id, exc)
            return None

    def running_ids(self) -> List[str]:
        """Task ids of calls running in this process."""
        with self._running_lock:
            return list(self._running)

    def sweep(self) -> int:
        """Renew this process's leases and put back dead workers' calls.

        Returns the number of calls put back (each got a new wake-up).
        """
        for task_id in self.running_ids():
            self.scheduler.extend(task_id)
        return len(self.scheduler.reclaim())

    def _reclaimed(self, task: ScheduledTask) -> None:
        try:
            self.wake()
        except Exception:
            logger.exception("ranch: could not publish a wake-up for reclaimed call %s", task.task_id)

    def _expired(self, task: ScheduledTask) -> None:
        if self.on_expired is not None:
            try:
                self.on_expired(task)
            except Exception:
                logger.exception("ranch: on_expired failed for call %s", task.task_id)

    # -- management API (the seed's names) ---------------------------------

    def set_priority_weight(self, key: str, weight: float) -> None:
        """Set a key's weight: 0.5 is served twice as often as 1.0."""
        self.scheduler.set_weight(key, weight)

    def set_custom_data(self, key: str, name: str, value: Any) -> None:
        """Store a JSON value for a key (weight functions see it)."""
        self.scheduler.set_custom_data(key, name, value)

    def get_custom_data(self, key: str, name: Optional[str] = None, default: Any = None) -> Any:
        """All custom data of a key, or one value (``default`` if unset)."""
        data = self.scheduler.metadata(key).custom_data
        return dict(data) if name is None else data.get(name, default)

    def add_tag(self, key: str, name: str, value: str = "") -> None:
        """Tag a key ``name=value``."""
        self.scheduler.add_tag(key, name, value)

    def get_tagged_clients(self, tag: str, value: Optional[str] = None) -> List[str]:
        """Keys carrying ``tag`` (with ``value`` if given)."""
        return self.scheduler.keys_with_tag(tag, value)

    def get_client_metadata(self, key: str) -> Dict[str, Any]:
        """``weight``, ``last_execution``, ``pending_tasks``, ``served_total``, ``tags``, ``custom_data``."""
        meta = self.scheduler.metadata(key)
        return {
            "key": meta.key,
            "weight": meta.weight,
            "last_execution": meta.last_served,
            "pending_tasks": meta.pending_tasks,
            "served_total": meta.served_total,
            "tags": dict(meta.tags),
            "custom_data": dict(meta.custom_data),
        }

    def get_system_status(self) -> Dict[str, Any]:
        """``backlog_size``, ``unique_lru_keys`` (active keys), ``leased``,
        ``expired_total``, ``served_total`` and ``health`` (``"ok"`` or
        ``"unavailable"`` with an ``error``)."""
        try:
            status = self.scheduler.status()
        except RanchError as exc:
            return {"health": "unavailable", "error": str(exc)}
        return {
            "backlog_size": status.backlog_size,
            "unique_lru_keys": status.active_keys,
            "leased": status.leased,
            "expired_total": status.expired_total,
            "served_total": status.served_total,
            "health": "ok",
        }


class KeyManagement:
    """The seed's management API, for an adapter's task or actor class to inherit.

    The class says where its backlog is (:meth:`_fair_dispatcher`,
    :meth:`_fair_backlog`); every method acts on that whole backlog.
    """

    def _fair_dispatcher(self) -> FairDispatcher:
        raise NotImplementedError

    def _fair_backlog(self) -> str:
        raise NotImplementedError

    def set_priority_weight(self, lru_key: str, weight: float) -> None:
        """Set a key's weight: 0.5 is served twice as often as 1.0."""
        self._fair_dispatcher().set_priority_weight(lru_key, weight)

    def set_custom_data(self, lru_key: str, name: str, value: Any) -> None:
        """Store a JSON value for a key (weight functions see it in ``metadata.custom_data``)."""
        self._fair_dispatcher().set_custom_data(lru_key, name, value)

    def get_custom_data(self, lru_key: str, name: Optional[str] = None, default: Any = None) -> Any:
        """All custom data of a key (a dict), or the value of ``name`` (``default`` if unset)."""
        return self._fair_dispatcher().get_custom_data(lru_key, name, default)

    def add_tag(self, lru_key: str, name: str, value: str = "") -> None:
        """Tag a key ``name=value``."""
        self._fair_dispatcher().add_tag(lru_key, name, value)

    def get_tagged_clients(self, tag: str, value: Optional[str] = None) -> List[str]:
        """Keys carrying ``tag`` (equal to ``value`` if given), sorted."""
        return self._fair_dispatcher().get_tagged_clients(tag, value)

    def get_client_metadata(self, lru_key: str) -> Dict[str, Any]:
        """``weight``, ``last_execution``, ``pending_tasks``, ``served_total``, ``tags``, ``custom_data``."""
        return self._fair_dispatcher().get_client_metadata(lru_key)

    def get_system_status(self) -> Dict[str, Any]:
        """``backlog_size``, ``unique_lru_keys`` (active keys), ``leased``, ``expired_total``,
        ``served_total``, ``health`` and the ``backlog`` name."""
        status = self._fair_dispatcher().get_system_status()
        status["backlog"] = self._fair_backlog()
        return status


class LeaseKeeper:
    """A daemon thread calling :meth:`FairDispatcher.sweep` every ``interval`` seconds.

    Start one per worker process (a Celery bootstep, a Dramatiq middleware).
    ``interval`` should be well under the lease, e.g. a third of it.
    """

    def __init__(self, dispatchers: Callable[[], Sequence[FairDispatcher]], interval: float) -> None:
        self._dispatchers = dispatchers
        self.interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ranch-lease-keeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: Optional[float] = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def sweep_once(self) -> int:
        """One pass over every dispatcher; errors are logged, never raised."""
        total = 0
        for dispatcher in self._dispatchers():
            try:
                total += dispatcher.sweep()
            except Exception:
                logger.exception("ranch: lease sweep failed")
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep_once()
