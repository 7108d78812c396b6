"""``RedisStorage``: Ranch's backlog and tracker in Redis, one Lua script per step."""

from __future__ import annotations

import logging
from typing import Any, List, Mapping, Optional, Sequence, Set, Tuple

from ranch_core import validation
from ranch_core.errors import CorruptTask, DuplicateTask
from ranch_core.models import (
    Finished,
    PopResult,
    ScheduledTask,
    WakeupPolicy,
)
from ranch_core.protocols import MAX_BATCH
from ranch_core.serializers import Serializer, SerializerSpec, get_serializer

from ranch_redis import layout, records, scripts
from ranch_redis.connection import (
    AMBIGUOUS,
    RETRYABLE,
    Retrier,
    block_limit,
    describe_client,
    describe_url,
    make_client,
)
from ranch_redis.reports import CorruptCallback
from ranch_redis.tracker import RedisTracker
from ranch_redis.wakeups import RedisWakeups, nonce

logger = logging.getLogger("ranch_redis")


class RedisStorage(RedisWakeups, RedisTracker):
    """A :class:`ranch_core.protocols.Storage` kept in Redis, shared by every process.

    Push, pop, finish, ack, release, requeue, extend, reclaim, remove,
    expire, repair and charge (here), the wake-up token steps
    (:class:`~ranch_redis.wakeups.RedisWakeups`) and the tracker's writes
    and reads (:class:`~ranch_redis.tracker.RedisTracker`) are each one Lua
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

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "ranch",
        serializer: SerializerSpec = "json",
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        on_corrupt: Optional[CorruptCallback] = None,
        where: Optional[str] = None,
    ) -> None:
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
        if kwargs.get("decode_responses") or getattr(
            getattr(client, "encoder", None), "decode_responses", False
        ):
            raise ValueError("the Redis client must use decode_responses=False: payloads are bytes")
        self.namespace = layout.check_namespace(namespace)
        self.client = client
        self.serializer: Serializer = get_serializer(serializer)
        self.on_corrupt = on_corrupt
        self.corrupt_total = 0
        self._retry = Retrier(
            where or describe_client(client), retries=retries, backoff=backoff, max_backoff=max_backoff
        )
        self._stats = layout.stats_key(self.namespace)
        self._wake = layout.wake_key(self.namespace)
        self._block_limit = block_limit(client)
        self._scripts = scripts.register_all(client)
        self._owns_client = False

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

    def __repr__(self) -> str:
        return f"RedisStorage({self._retry.where!r}, namespace={self.namespace!r})"

    # -- helpers -----------------------------------------------------------
    def _run(self, name: str, *args: Any) -> Any:
        script = self._scripts[name]
        note = AMBIGUOUS.get(name, "")
        keys = [self._stats]
        return self._retry(lambda retry: script(keys=keys, args=args), operation=name, note=note)

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
        step (see :meth:`ranch_core.protocols.Backlog.push`): :meth:`push_many`
        of one task.

        Everything is checked and encoded before anything is sent. If the
        connection drops after the script ran, the retry recognises the
        identical task already stored and succeeds without storing it twice.
        """
        return self.push_many([task], weight=weight, tags=tags, wakeups=wakeups)

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
        tasks = list(tasks)
        if not tasks:
            return []
        if len(tasks) > MAX_BATCH:
            raise ValueError(f"push_many takes at most {MAX_BATCH} tasks, not {len(tasks)}")
        key = tasks[0].key
        if any(task.key != key for task in tasks):
            raise ValueError("push_many takes tasks of one key")
        ids = [task.task_id for task in tasks]
        if len(set(ids)) != len(ids):
            raise DuplicateTask("push_many names one task_id twice")
        task_args: List[Any] = []
        key_hex = ""
        for task in tasks:
            task_id, key_hex, body, expires = self._task_args(task)
            task_args += [task_id, body, expires]
        weight = validation.check_optional_weight(weight)
        weight_arg = "" if weight is None else layout.float_arg(weight)
        checked_tags = validation.check_tags(tags)
        tag_args: List[str] = []
        for name, value in checked_tags.items():
            tag_args += [name, layout.hex_key(name), value]
        head = [weight_arg, key if tag_args else "", len(checked_tags), *tag_args]
        if wakeups is None:
            token_args: List[Any] = ["", "", ""]
        else:
            deadline = layout.float_arg(tasks[-1].enqueued_at + wakeups.ttl)
            token_args = [wakeups.max_wakeups, nonce(), deadline]
        tail = [*token_args, key_hex, len(tasks), *task_args]
        script = self._scripts["push_many"]

        def call(retry: bool) -> Any:
            return script(keys=[self._stats], args=["1" if retry else "0", *head, *tail])

        operation = "push" if len(tasks) == 1 else "push_many"
        reply = self._retry(call, operation=operation, note=AMBIGUOUS[operation])
        if reply[0] == layout.PUSH_DUPLICATE:
            raise DuplicateTask(
                f"task_id {ids[0]!r} is already waiting or leased"
                if len(ids) == 1
                else "a task_id of the batch is already waiting or leased"
            )
        return [token.decode() for token in reply[1:]]

    def _push_args(self, task: ScheduledTask, weight: Optional[float]) -> List[Any]:
        """Push arguments but the trailing ones (no expiry, no tags), for the benchmark's prefill."""
        if task.expires_at is not None:
            raise ValueError("_push_args is for tasks without expiry")
        task_id, key_hex, body, _ = self._task_args(task)
        return [task_id, key_hex, body, "" if weight is None else layout.float_arg(weight)]

    def _task_args(self, task: ScheduledTask) -> List[Any]:
        """Check ``task`` and encode it: ``[task id, hex key, body, expires_at or '']``."""
        key = validation.check_key(task.key)
        task_id = validation.check_name(task.task_id, "task_id")
        data = self.serializer.dumps(task.payload)
        key_hex = layout.hex_key(key)
        body = layout.encode_body(key_hex, task.enqueued_at, task.expires_at, data)
        expires = "" if task.expires_at is None else layout.float_arg(task.expires_at)
        return [task_id, key_hex, body, expires]

    def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> PopResult:
        """The fair choice at ``now``, leased, with the wake-up ``token`` if
        given (see :meth:`ranch_core.protocols.Backlog.pop`)."""
        if token is not None and wakeups is None:
            raise ValueError("pop with a token needs wakeups (a WakeupPolicy)")
        now = float(now)
        args: List[Any] = [layout.float_arg(now), layout.float_arg(now + float(lease_seconds))]
        if token is not None and wakeups is not None:
            args += [token, wakeups.max_wakeups, nonce(), layout.float_arg(now + wakeups.ttl)]
        reclaimed: List[ScheduledTask] = []
        minted: List[str] = []
        corrupt: Set[bytes] = set()
        while True:
            reply = self._run("pop", *args)
            state, task_id, body = reply[0], reply[1], reply[2]
            expired: List[ScheduledTask] = []
            if len(reply) > 3:  # something was expired, reclaimed, minted or found corrupt
                n_expired, n_reclaimed, n_minted = 2 * int(reply[3]), 2 * int(reply[4]), int(reply[5])
                at = 6
                expired = self._decode_pairs(reply[at : at + n_expired], waiting=False)
                at += n_expired
                reclaimed.extend(
                    self._decode_pairs(reply[at : at + n_reclaimed], waiting=True, corrupt=corrupt)
                )
                at += n_reclaimed
                minted += [raw.decode() for raw in reply[at : at + n_minted]]
                self._report_dropped(reply[at + n_minted :])
            if state == layout.POP_SERVED:
                try:
                    task = records.decode_task(self.serializer, task_id, body)
                except ValueError as exc:
                    # A reclaimed lease that went back to the head is served
                    # by the same step: report it once.
                    if task_id not in corrupt:
                        self._corrupt(task_id, str(exc))
                    if token is None or wakeups is None:
                        self._run("ack", task_id)
                    else:
                        finished = self.finish(
                            task_id.decode(), now, token=token, wakeups=wakeups, keep_token=True
                        )
                        if not finished.kept:
                            return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
                else:
                    return PopResult(task, tuple(expired), tuple(reclaimed), tuple(minted))
                if expired:
                    return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
            elif state in (layout.POP_EMPTY, layout.POP_STALE) or expired:
                return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
            # Only corrupt records were dropped: pop again.

    def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
    ) -> Finished:
        """Ack (or requeue) a lease and decide its token's fate in one script
        (``finish.lua``; see :meth:`ranch_core.protocols.Backlog.finish`)."""
        if requeue is not None and requeue.task_id != task_id:
            raise ValueError("finish: requeue.task_id must be task_id")
        requeue_args: List[Any] = []
        if requeue is not None:
            _, key_hex, body, expires = self._task_args(requeue)
            requeue_args = [key_hex, body, expires]
        if wakeups is None:
            token_args: List[Any] = ["", "", "", "0", ""]
        else:
            deadline = layout.float_arg(float(now) + wakeups.ttl)
            token_args = [token or "", wakeups.max_wakeups, deadline, "1" if keep_token else "0", nonce()]
        mode = "ack" if requeue is None else "requeue"
        script = self._scripts["finish"]

        def call(retry: bool) -> Any:
            tail = [*requeue_args[:2], "1" if retry else "0", *requeue_args[2:]] if requeue_args else []
            return script(keys=[self._stats], args=[task_id, mode, *token_args, *tail])

        reply = self._retry(call, operation="finish", note=AMBIGUOUS["finish"])
        done, fate = bool(int(reply[0])), int(reply[1])
        publish = tuple(raw.decode() for raw in reply[2:])
        if fate == layout.TOKEN_PASSED and token is not None:
            publish = (token, *publish)
        return Finished(done, publish, fate == layout.TOKEN_KEPT)

    def ack(self, task_id: str) -> bool:
        """Finish a leased task; ``False`` if it holds no lease (a retried ack whose
        first attempt went through also answers ``False``)."""
        return bool(self._run("ack", task_id) == layout.DONE)

    def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key; ``False`` if not leased."""
        result = self._run("release", task_id)
        if result == layout.RELEASE_CORRUPT:
            self._corrupt(task_id.encode(), "unreadable task record")
        return bool(result == layout.DONE)

    def requeue(self, task: ScheduledTask) -> bool:
        """Finish a lease and append ``task`` to the tail of its key in one step
        (see :meth:`ranch_core.protocols.Backlog.requeue`); ``False`` if not leased.
        A retry after a lost reply recognises its own write."""
        task_id, key_hex, body, expires = self._task_args(task)
        script = self._scripts["requeue"]

        def call(retry: bool) -> Any:
            return script(keys=[self._stats], args=[task_id, key_hex, body, "1" if retry else "0", expires])

        reply = self._retry(call, operation="requeue", note=AMBIGUOUS["requeue"])
        return reply in (layout.REQUEUE_DONE, layout.REQUEUE_ALREADY)

    def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline``; ``False`` if not leased."""
        return bool(self._run("extend", task_id, layout.float_arg(deadline)) == layout.DONE)

    def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return those tasks."""
        reply = self._run("reclaim", layout.float_arg(now))
        end = 1 + 2 * int(reply[0])
        self._report_dropped(reply[end:])
        return self._decode_pairs(reply[1:end], waiting=True)

    def remove(self, key: str, task_id: str) -> bool:
        """Delete a waiting task of ``key``; ``False`` if it is not waiting there."""
        return bool(self._run("remove", layout.hex_key(key), task_id) == layout.DONE)

    def charge(self, key: str, extra: float) -> None:
        """Add ``extra`` to the key's pass. A retry after a lost reply may charge twice."""
        self._run("charge", layout.hex_key(key), layout.float_arg(extra))

    def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """Drop up to ``limit`` waiting tasks whose expiry is ``<= now``; return them
        (see :meth:`ranch_core.protocols.Backlog.expire`)."""
        reply = self._run("expire", layout.float_arg(now), int(limit))
        return self._decode_pairs(reply[1:], waiting=False)

    def waiting(self, now: Optional[float] = None) -> int:
        """Tasks waiting (not leased); with ``now``, expired ones left out."""
        return int(self._run("waiting", layout.now_arg(now)))

    def wait(self, now: float, timeout: Optional[float]) -> bool:
        """Block until a call may be runnable or ``timeout`` passes (see
        :meth:`ranch_core.protocols.Backlog.wait`), on the server: the check
        of ``wait.lua``, then a ``BLPOP`` on the namespace's notification
        list capped at the earliest lease deadline.

        One ``BLPOP`` lasts at most the client's socket timeout less a
        second; then ``False`` comes back early and the caller waits again.
        A connection error ends the wait with ``True``: the pop that follows
        reports the outage (or retries it).
        """
        reply = self._run("wait", layout.float_arg(now))
        limit, capped = wait_limit(reply, now, timeout, self._block_limit)
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
        reply = self._run("repair", validation.check_limit(limit))
        found = []
        for index in range(1, len(reply), 3):
            key_hex, field, raw = reply[index : index + 3]
            where = "the stats hash" if not key_hex else f"key {records.key_name(key_hex)!r}"
            if field == b"active":
                what = f"{where} holds tasks but was not selectable; made active again"
            else:
                what = f"{where}: field {field.decode()!r} held {raw!r}; reset to its default"
            found.append(self._report_corrupt(f"namespace {self.namespace!r}: {what}"))
        return found


def wait_limit(
    reply: Any, now: float, timeout: Optional[float], cap: Optional[float]
) -> Tuple[Optional[float], bool]:
    """From ``wait.lua``'s reply: how long to block (``None``: no limit) and
    whether the end of that block means "pop now" (a lease deadline, or
    the server said a call is runnable) rather than "time is up"."""
    if int(reply[0]) == layout.WAIT_READY:
        return 0.0, True
    limit, capped = timeout, False
    if reply[1]:
        until = float(reply[1]) - float(now)
        if limit is None or until < limit:
            limit, capped = until, True
    if cap is not None and (limit is None or limit > cap):
        limit, capped = cap, False
    return limit, capped
