"""``RedisStorage``: Ranch's backlog and tracker in Redis, one Lua script per step.

The steps themselves are in :mod:`ranch_redis.operations`; this class runs
them on a blocking redis-py client (see :mod:`ranch_redis.steps`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, List, Mapping, Optional, Sequence, TypeVar

from ranch_core import validation
from ranch_core.errors import CorruptTask, StorageUnavailable
from ranch_core.keys import Key
from ranch_core.models import (
    Finished,
    LRUKeyMetadata,
    PopResult,
    RuntimeCost,
    ScheduledTask,
    SystemStatus,
    WakeupPolicy,
    WakeupStatus,
)
from ranch_core.serializers import SerializerSpec, get_serializer
from redis.exceptions import NoScriptError, ResponseError

from ranch_redis import layout
from ranch_redis.connection import RETRYABLE, describe_url, make_client
from ranch_redis.metrics import BacklogMetrics
from ranch_redis.operations import PUSH_NOTE, RedisOperations, pushed, retry_push
from ranch_redis.reports import CorruptCallback
from ranch_redis.steps import Step, Steps
from ranch_redis.views import CallPlace, KeysPage

T = TypeVar("T")


class RedisStorage(RedisOperations):
    """A :class:`ranch_core.protocols.Storage` kept in Redis, shared by every process.

    Push, pop, finish, ack, release, requeue, extend, reclaim, remove,
    expire, repair and charge (here), the wake-up token steps
    (:class:`~ranch_redis.wakeups.RedisWakeups`), the per-key controls
    (:class:`~ranch_redis.controls.RedisControls`: concurrency and rate
    limits, pause, backlog limits, purge, revoke; checked in the pop
    script) and the tracker's writes and reads
    (:class:`~ranch_redis.tracker.RedisTracker`) are each one Lua
    script, so each is atomic on the server: two workers never pop the
    same task and a producer racing a worker never loses one. The selection
    order and every number it depends on match
    :class:`ranch_core.backends.memory.InMemoryStorage` step for step.

    ``client`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster`` created
    with ``decode_responses=False``. ``namespace`` separates independent
    queues on one server; it becomes the hash tag of every Redis key, so one
    namespace lives in one cluster slot. ``serializer`` is ``"json"``
    (default), ``"pickle"`` (only for a Redis nobody untrusted can write to)
    or a :class:`~ranch_core.serializers.Serializer`.

    Connection errors and timeouts are retried ``retries`` times with
    exponential ``backoff`` (capped at ``max_backoff`` seconds); then
    :class:`~ranch_core.errors.StorageUnavailable` is raised. Tasks that
    cannot be decoded are logged, removed, passed to ``on_corrupt`` (if
    given), counted in :attr:`corrupt_total` (this process) and skipped;
    so is each fix made by :meth:`repair`.
    ``where`` names the server in error messages (default: the client's
    host and port; never a password).
    """

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "ranch",
        serializer: SerializerSpec = "json",
        cluster: bool = False,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        on_corrupt: Optional[CorruptCallback] = None,
        **redis_options: Any,
    ) -> RedisStorage:
        """Connect to ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``redis_options`` go to redis-py: ``username``/``password`` (ACL),
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
        ``socket_timeout``, ... With ``cluster=True`` the URL names one node of
        a Redis Cluster and a ``RedisCluster`` client is used.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        layout.check_namespace(namespace)
        get_serializer(serializer)
        client = make_client(url, cluster=cluster, options=redis_options)
        storage = cls(
            client,
            namespace=namespace,
            serializer=serializer,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            on_corrupt=on_corrupt,
            where=("cluster " if cluster else "") + describe_url(url),
        )
        storage._owns_client = True
        return storage

    def close(self) -> None:
        """Close the client if :meth:`from_url` created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RedisStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running steps -----------------------------------------------------

    def _execute(self, step: Step, retry: bool) -> Any:
        if step.command:
            return self.client.execute_command(*step.args(retry))
        return self._evalsha(step.name, step.args(retry))

    def _evalsha(self, name: str, args: Sequence[Any]) -> Any:
        """Run script ``name`` with ``args``, once."""
        script = self._scripts[name]
        try:
            # EVALSHA itself: redis-py's Script.__call__ adds about 1.7 µs to every call
            # (an import and a tuple copy), a tenth of what an lru_send costs in Python
            return self.client.evalsha(script.sha, 1, self._stats, *args)
        except NoScriptError:  # the server lost its scripts (restart, SCRIPT FLUSH)
            return script(keys=[self._stats], args=args)  # loads it again, then runs it

    def _push_once(self, args: List[Any], retry: bool) -> Any:
        return self._evalsha("push", retry_push(args) if retry else args)

    def _drive(self, steps: Steps[T]) -> T:
        """Run an operation's steps, each with the retry policy; return its result."""
        reply: Any = None
        try:
            while True:
                step = steps.send(reply)
                reply = self._retry(
                    partial(self._execute, step), operation=step.operation or step.name, note=step.note
                )
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _run(self, name: str, *args: Any) -> Any:
        """Run one script with ``args`` (tests and benchmarks)."""
        return self._retry(lambda retry: self._scripts[name](keys=[self._stats], args=args), operation=name)

    # -- Backlog -----------------------------------------------------------

    def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append ``task`` to its key, with the key's weight and tags, in one
        step (see :meth:`ranch_core.protocols.Backlog.push`): ``push.lua``,
        the one-task case of :meth:`push_many` in fewer Redis commands.

        Everything is checked and encoded before anything is sent. If the
        connection drops after the script ran, the retry recognises the
        identical task already stored and succeeds without storing it twice.
        """
        if task.not_before is not None and task.not_before > task.enqueued_at:
            return self.push_many([task], weight=weight, tags=tags, wakeups=wakeups)
        # RedisOperations._push without the step: the same arguments, retries and reply
        args = self._push_arguments(task, weight, tags, wakeups)
        reply = self._retry(partial(self._push_once, args), operation="push", note=PUSH_NOTE)
        minted = pushed(reply, args[0], task.key)
        if self._registration_due():
            self._write_registry()
        return minted

    def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append up to :data:`~ranch_core.protocols.MAX_BATCH` tasks of one
        key in one script (``push_many.lua``), all or none; returns the token
        ids minted (see :meth:`ranch_core.protocols.Backlog.push_many`).

        A retry after a lost reply recognises its own write by the first
        task's identical body.
        """
        minted = self._drive(self._push_many(tasks, weight, tags, wakeups))
        if self._registration_due():
            self._write_registry()
        return minted

    def _write_registry(self) -> None:
        """List the namespace in the registry (``ranch backlogs``); a failure
        (an ACL user limited to its namespace, an outage) is logged, never raised:
        the push it follows was stored."""
        try:
            self._drive(self._register())
        except (StorageUnavailable, ResponseError) as exc:
            self._registration_failed(exc)

    def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        runtime: Optional[RuntimeCost] = None,
    ) -> PopResult:
        """The fair choice at ``now``, leased, with the wake-up ``token`` if
        given (see :meth:`ranch_core.protocols.Backlog.pop`); with ``runtime``
        the key is charged its run-time estimate (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return self._drive(self._pop(now, lease_seconds, token, wakeups, runtime))

    def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Finished:
        """Ack (or requeue) a lease and decide its token's fate in one script
        (``finish.lua``; see :meth:`ranch_core.protocols.Backlog.finish`);
        the call's run time, and ``failed``, go into the metrics; a call
        charged by run time is settled with ``cost`` (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return self._drive(self._finish(task_id, now, requeue, token, wakeups, keep_token, failed, cost))

    def run_estimate(self, key: Key) -> Optional[float]:
        """The key's moving average of run times (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return self._drive(self._run_estimate(validation.check_any_key(key)))

    def ack(self, task_id: str) -> bool:
        """Finish a leased task; ``False`` if it holds no lease (a retried ack whose
        first attempt went through also answers ``False``)."""
        return self._drive(self._ack(task_id))

    def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key; ``False`` if not leased."""
        return self._drive(self._release(task_id))

    def requeue(self, task: ScheduledTask) -> bool:
        """Finish a lease and append ``task`` to the tail of its key in one step
        (see :meth:`ranch_core.protocols.Backlog.requeue`); ``False`` if not leased.
        A retry after a lost reply recognises its own write."""
        return self._drive(self._requeue(task))

    def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline``; ``False`` if not leased."""
        return self._drive(self._extend(task_id, deadline))

    def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return those tasks."""
        return self._drive(self._reclaim(now))

    def remove(self, key: Key, task_id: str) -> bool:
        """Delete a waiting task of ``key``; ``False`` if it is not waiting there."""
        return self._drive(self._remove(validation.check_any_key(key), task_id))

    def charge(self, key: Key, extra: float) -> None:
        """Add ``extra`` to the key's pass. A retry after a lost reply may charge twice."""
        self._drive(self._charge(validation.check_any_key(key), extra))

    def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """Drop up to ``limit`` waiting tasks whose expiry is ``<= now``; return them
        (see :meth:`ranch_core.protocols.Backlog.expire`)."""
        return self._drive(self._expire(now, limit))

    def waiting(self, now: Optional[float] = None) -> int:
        """Tasks waiting (not leased); with ``now``, expired ones left out."""
        return self._drive(self._waiting(now))

    def wait(self, now: float, timeout: Optional[float]) -> bool:
        """Block until a call may be runnable or ``timeout`` passes (see
        :meth:`ranch_core.protocols.Backlog.wait`), on the server: the check
        of ``wait.lua``, then a ``BLPOP`` on the namespace's notification
        list (``layout.wake_key``) capped at the earliest lease deadline.

        One ``BLPOP`` lasts at most the client's socket timeout less a
        second; then ``False`` comes back early and the caller waits again.
        A connection error ends the wait with ``True``: the pop that follows
        reports the outage (or retries it).
        """
        limit, capped = self._drive(self._wait_limit(now, timeout))
        if limit is not None and limit <= 0:
            return capped
        try:
            got = self.client.blpop([self._wake], timeout=0 if limit is None else max(limit, 0.001))
        except RETRYABLE:
            return True
        return got is not None or capped

    def repair(self, limit: int) -> List[CorruptTask]:
        """Check the counters and up to ``limit`` keys holding tasks; fix what
        is damaged and report each fix (see
        :class:`ranch_core.protocols.Repairable` and ``scripts/repair.lua``).

        Call it from a sweep: successive calls walk every key holding tasks,
        ``limit`` at a time, without scanning the keyspace.
        """
        return self._drive(self._repair(limit))

    # -- wake-up tokens ----------------------------------------------------

    def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Hand back a held token (``release_token.lua``): returned if passed on."""
        return self._drive(self._release_token(token, now, wakeups))

    def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Retire lost tokens and mint replacements (``sweep_wakeups.lua``)."""
        return self._drive(self._sweep_wakeups(now, wakeups))

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record ``worker``'s slots until ``now + ttl``; return the live total
        (``register_slots.lua``)."""
        return self._drive(self._register_slots(worker, slots, now, ttl))

    def live_slots(self, now: float) -> int:
        """The live workers' registered slots (``live_slots.lua``)."""
        return self._drive(self._live_slots(now))

    def wakeup_status(self) -> WakeupStatus:
        """Tokens in flight, held and deferred."""
        return self._drive(self._wakeup_status())

    # -- per-key controls --------------------------------------------------

    def set_control(
        self,
        key: Optional[Key],
        name: str,
        value: Any,
        now: float,
        *,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Set ``key``'s own control ``name`` (or, with ``key=None``, a default)
        and settle the key, in one script (``set_control.lua``); returns the
        tokens minted if calls became runnable (see
        :meth:`ranch_core.protocols.Controls.set_control`)."""
        return self._drive(
            self._set_control(
                None if key is None else validation.check_any_key(key), name, value, now, wakeups
            )
        )

    def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """Delete up to ``limit`` waiting calls of ``key`` from its head in one
        script (``purge_key.lua``); return them. Leased calls run on."""
        return self._drive(self._purge_key(validation.check_any_key(key), limit))

    def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """Delete the waiting call ``task_id`` (``revoke.lua``) and return it;
        ``None`` if no call of that id waits."""
        return self._drive(self._revoke(task_id))

    # -- Tracker -----------------------------------------------------------

    def set_weight(self, key: Key, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""
        self._drive(self._set_weight(validation.check_any_key(key), weight))

    def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """Store a JSON-encodable ``value`` under ``name``; ``TypeError`` otherwise."""
        self._drive(self._set_custom_data(validation.check_any_key(key), name, value))

    def add_tag(self, key: Key, name: str, value: str) -> None:
        """Tag ``key`` with ``name=value`` (replacing an earlier value)."""
        self._drive(self._add_tag(validation.check_any_key(key), name, value))

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""
        return self._drive(self._keys_with_tag(name, value))

    def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen. With
        ``now``, ``pending_tasks`` leaves out tasks whose expiry is ``<= now``.

        A stored field that cannot be read (a weight that is not a number in
        range, a custom value that is not JSON, text that is not UTF-8) is
        reported through ``on_corrupt`` and read as its default (skipped,
        for tags and custom data), as the scripts do.
        """
        return self._drive(self._metadata(validation.check_any_key(key), now))

    # -- operators' views --------------------------------------------------

    def backlogs(self) -> List[str]:
        """Every namespace in the registry of this Redis (``layout.registry_key()``),
        sorted: those a storage ever pushed to. One ``SMEMBERS``; no keyspace scan."""
        return self._drive(self._backlogs())

    def keys_page(self, order: str = "waiting", limit: int = 20, offset: int = 0) -> KeysPage:
        """Up to ``limit`` keys from ``offset`` in ``order``: ``"waiting"``
        (most waiting calls first), ``"wait"`` (the fair order: the key served
        next first; parked keys are not in it) or ``"served"`` (most calls
        served first), in one read-only script that reads only the keys it
        returns (``keys_page.lua``: O(limit log K))."""
        return self._drive(self._keys_page(order, limit, offset))

    def why(self, task_id: str, now: float) -> CallPlace:
        """Where call ``task_id`` stands at ``now`` and what holds it
        (``why.lua``: O(log K) plus its position in its key's list)."""
        return self._drive(self._why(task_id, now))

    def metrics(self, limit: int = 20, now: Optional[float] = None) -> BacklogMetrics:
        """The namespace's counters and wait histogram, and those of its
        ``limit`` keys with the most waiting calls, in one read-only script
        (``metrics.lua``: O(limit log K)); see :mod:`ranch_redis.metrics`."""
        return self._drive(self._metrics(limit, now))

    def status(self, now: Optional[float] = None) -> SystemStatus:
        """Counters of the namespace, read in O(1) (O(log N) with ``now``:
        ``backlog_size`` then leaves out tasks whose expiry is ``<= now``)."""
        return self._drive(self._status(now))
