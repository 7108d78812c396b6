"""``RedisOperations``: every step of the Redis storage, written once and free of I/O.

Each operation is a generator of :class:`~ranch_redis.steps.Step` (see
:mod:`ranch_redis.steps`): it checks and encodes its arguments, yields the
script calls it needs, reads their replies and returns the result.
:class:`~ranch_redis.RedisStorage` runs them on a blocking client,
:class:`~ranch_redis.AsyncRedisStorage` on an asyncio client.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Set, Tuple

from ranch_core import validation
from ranch_core.backends.delayed import delayed_until
from ranch_core.errors import BacklogFull, CorruptTask, DuplicateTask
from ranch_core.keys import Key, group_of
from ranch_core.models import Finished, PopResult, RuntimeCost, ScheduledTask, WakeupPolicy
from ranch_core.protocols import MAX_BATCH
from ranch_core.serializers import Serializer, SerializerSpec, get_serializer

from ranch_redis import layout, records, scripts
from ranch_redis.connection import AMBIGUOUS, Retrier, block_limit, describe_client
from ranch_redis.controls import RedisControls
from ranch_redis.inspection import RedisInspection
from ranch_redis.reports import CorruptCallback
from ranch_redis.steps import Step, Steps, script
from ranch_redis.tracker import RedisTracker
from ranch_redis.wakeups import RedisWakeups, nonce

#: What to say when a push fails for good after it may have reached Redis.
PUSH_NOTE = AMBIGUOUS["push"]


def retry_push(args: List[Any]) -> List[Any]:
    """``push.lua``'s arguments for a retry: ARGV[8] = '1', so the script
    recognises its own earlier write (the reply was lost)."""
    head = args[:7]
    return [*head, *[""] * (7 - len(head)), "1", *args[8:]]


def pushed(reply: Any, task_id: str, key: Key) -> List[str]:
    """The token ids a ``push.lua`` reply minted; ``DuplicateTask`` if it
    refused the id, ``BacklogFull`` if the key is full."""
    if isinstance(reply, bytes):
        return [reply.decode()]
    if isinstance(reply, list):
        raise full(key, reply, 1)
    if reply == layout.PUSH_DUPLICATE:
        raise DuplicateTask(f"task_id {task_id!r} is already waiting or leased")
    return []


def full(key: Key, reply: Sequence[Any], count: int) -> BacklogFull:
    """The error for a ``{PUSH_FULL, waiting, limit, group}`` reply to a push
    of ``count`` calls (``group`` ``b"1"``: the limit is the key's group's, a
    string key's, which counts every member's calls)."""
    waiting, limit = int(reply[1]), int(reply[2])
    if len(reply) > 3 and reply[3] == b"1":
        key = group_of(key)
    return BacklogFull(
        f"key {key!r} holds {waiting} waiting calls, its max_backlog is {limit}: {count} more refused",
        key=key,
        limit=limit,
    )


class RedisOperations(RedisWakeups, RedisControls, RedisTracker, RedisInspection):
    """What the blocking and the asyncio Redis storages share: their settings
    (see :class:`~ranch_redis.RedisStorage` for the arguments) and every
    operation as steps."""

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._retry.where!r}, namespace={self.namespace!r})"

    # -- Backlog -----------------------------------------------------------

    def _push_many(
        self,
        tasks: Sequence[ScheduledTask],
        weight: Optional[float],
        tags: Optional[Mapping[str, str]],
        wakeups: Optional[WakeupPolicy],
    ) -> Steps[List[str]]:
        tasks = list(tasks)
        if not tasks:
            return []
        if len(tasks) > MAX_BATCH:
            raise ValueError(f"push_many takes at most {MAX_BATCH} tasks, not {len(tasks)}")
        key = tasks[0].key
        if any(task.key != key for task in tasks):
            raise ValueError("push_many takes tasks of one key")
        due = delayed_until(tasks)
        if due is not None:
            return (yield from self._push_delayed(tasks, due, weight, tags, wakeups))
        if len(tasks) == 1:
            return (yield from self._push(tasks[0], weight, tags, wakeups))
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
        head = [weight_arg, layout.tag_field(key) if tag_args else "", len(checked_tags), *tag_args]
        if wakeups is None:
            token_args: List[Any] = ["", "", ""]
        else:
            deadline = layout.float_arg(tasks[-1].enqueued_at + wakeups.ttl)
            token_args = [wakeups.max_wakeups, nonce(), deadline]
        tail = [*token_args, key_hex, len(tasks), *task_args]
        reply = yield Step(
            "push_many",
            lambda retry: ["1" if retry else "0", *head, *tail],
            note=AMBIGUOUS["push_many"],
            operation="push_many",
        )
        if reply[0] == layout.PUSH_DUPLICATE:
            raise DuplicateTask("a task_id of the batch is already waiting or leased")
        if reply[0] == layout.PUSH_FULL:
            raise full(key, reply, len(tasks))
        return [token.decode() for token in reply[1:]]

    def _push_delayed(
        self,
        tasks: List[ScheduledTask],
        due: float,
        weight: Optional[float],
        tags: Optional[Mapping[str, str]],
        wakeups: Optional[WakeupPolicy],
    ) -> Steps[List[str]]:
        """Delayed tasks of one key and one due time (``push_delayed.lua``) as a step."""
        ids = [task.task_id for task in tasks]
        if len(set(ids)) != len(ids):
            raise DuplicateTask("push_many names one task_id twice")
        task_args: List[Any] = []
        key_hex = ""
        for task in tasks:
            task_id, key_hex, body, _ = self._task_args(task)
            task_args += [task_id, body]
        weight = validation.check_optional_weight(weight)
        checked_tags = validation.check_tags(tags)
        tag_args: List[str] = []
        for name, value in checked_tags.items():
            tag_args += [name, layout.hex_key(name), value]
        weight_arg = "" if weight is None else layout.float_arg(weight)
        head: List[Any] = [
            weight_arg,
            layout.tag_field(tasks[0].key) if tag_args else "",
            len(checked_tags),
            *tag_args,
        ]
        if wakeups is None:
            token_args: List[Any] = ["", "", "0"]
        else:
            token_args = [wakeups.max_wakeups, nonce(), "1" if wakeups.defer else "0"]
        tail = [*token_args, key_hex, layout.float_arg(due), len(tasks), *task_args]
        reply = yield Step(
            "push_delayed",
            lambda retry: ["1" if retry else "0", *head, *tail],
            note=AMBIGUOUS["push_delayed"],
            operation="push_delayed",
        )
        if reply[0] == layout.PUSH_DUPLICATE:
            raise DuplicateTask("a task_id of the batch is already waiting, delayed or leased")
        if reply[0] == layout.PUSH_FULL:
            raise full(tasks[0].key, reply, len(tasks))
        return [token.decode() for token in reply[1:]]

    def _push(
        self,
        task: ScheduledTask,
        weight: Optional[float],
        tags: Optional[Mapping[str, str]],
        wakeups: Optional[WakeupPolicy],
    ) -> Steps[List[str]]:
        """One task (``push.lua``) as a step. :meth:`RedisStorage.push` runs the
        same arguments and reads the same reply without the step (every
        ``lru_delay``/``lru_send`` is one; the step machinery costs it more
        than its checks)."""
        args = self._push_arguments(task, weight, tags, wakeups)
        retried = retry_push(args)
        reply = yield Step("push", lambda retry: retried if retry else args, note=PUSH_NOTE, operation="push")
        return pushed(reply, args[0], task.key)

    def _push_arguments(
        self,
        task: ScheduledTask,
        weight: Optional[float],
        tags: Optional[Mapping[str, str]],
        wakeups: Optional[WakeupPolicy],
    ) -> List[Any]:
        """Check and encode a push: ``push.lua``'s ARGV, not a retry (see
        :func:`retry_push`); the trailing arguments a push does not need are
        left out. Raises before anything is sent."""
        task_id, key_hex, body, expires = self._task_args(task)
        weight = validation.check_optional_weight(weight)
        checked_tags = validation.check_tags(tags)
        args: List[Any] = [task_id, key_hex, body]
        if wakeups is None:
            args += ["", "", ""]
        else:
            args += [wakeups.max_wakeups, nonce(), layout.float_arg(task.enqueued_at + wakeups.ttl)]
        weight_arg = "" if weight is None else layout.float_arg(weight)
        if checked_tags:
            args += [weight_arg, "0", expires, layout.tag_field(task.key)]
            for name, value in checked_tags.items():
                args += [name, layout.hex_key(name), value]
        elif expires:
            args += [weight_arg, "0", expires]
        elif weight_arg:
            args.append(weight_arg)
        return args

    def _push_args(self, task: ScheduledTask, weight: Optional[float]) -> List[Any]:
        """Push arguments up to the weight (no tokens, no expiry, no tags) for
        the benchmark's prefill, which appends the retry flag ``'0'``."""
        if task.expires_at is not None:
            raise ValueError("_push_args is for tasks without expiry")
        args = self._push_arguments(task, weight, None, None)
        return [*args, *[""] * (7 - len(args))]

    def _task_args(self, task: ScheduledTask) -> List[Any]:
        """Check ``task`` and encode it: ``[task id, hex key, body, expires_at or '']``."""
        key = validation.check_any_key(task.key)
        task_id = validation.check_name(task.task_id, "task_id")
        data = self.serializer.dumps(task.payload)
        key_hex = layout.hex_key(key)
        body = layout.encode_body(key_hex, task.enqueued_at, task.expires_at, data)
        expires = "" if task.expires_at is None else layout.float_arg(task.expires_at)
        return [task_id, key_hex, body, expires]

    def _pop(
        self,
        now: float,
        lease_seconds: float,
        token: Optional[str],
        wakeups: Optional[WakeupPolicy],
        runtime: Optional[RuntimeCost] = None,
    ) -> Steps[PopResult]:
        if token is not None and wakeups is None:
            raise ValueError("pop with a token needs wakeups (a WakeupPolicy)")
        now = float(now)
        args: List[Any] = [layout.float_arg(now), layout.float_arg(now + float(lease_seconds))]
        if token is not None and wakeups is not None:
            deferring = "1" if wakeups.defer else "0"
            args += [token, wakeups.max_wakeups, nonce(), layout.float_arg(now + wakeups.ttl), deferring]
        if runtime is not None:
            args += [""] * (7 - len(args)) + [layout.float_arg(runtime.first_estimate)]
        reclaimed: List[ScheduledTask] = []
        minted: List[str] = []
        corrupt: Set[bytes] = set()
        while True:
            reply = yield script("pop", *args, note=AMBIGUOUS["pop"])
            state, task_id, body = reply[0], reply[1], reply[2]
            expired: List[ScheduledTask] = []
            if len(reply) > 3:  # something was expired, reclaimed, minted or found corrupt
                n_expired, n_reclaimed, n_minted = 2 * int(reply[3]), 2 * int(reply[4]), int(reply[5])
                at = 6
                expired = yield from self._decode_pairs(reply[at : at + n_expired], waiting=False)
                at += n_expired
                reclaimed.extend(
                    (
                        yield from self._decode_pairs(
                            reply[at : at + n_reclaimed], waiting=True, corrupt=corrupt
                        )
                    )
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
                        yield script("ack", task_id, note=AMBIGUOUS["ack"])
                    else:
                        finished = yield from self._finish(
                            task_id.decode(), now, None, token, wakeups, keep_token=True
                        )
                        if not finished.kept:
                            return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
                else:
                    return PopResult(task, tuple(expired), tuple(reclaimed), tuple(minted))
                if expired:
                    return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
            elif state == layout.POP_EMPTY:
                retry_at = float(task_id) if task_id else None
                return PopResult(
                    None, tuple(expired), tuple(reclaimed), tuple(minted), retry_at, body == b"1"
                )
            elif state == layout.POP_STALE or expired:
                return PopResult(None, tuple(expired), tuple(reclaimed), tuple(minted))
            # Only corrupt records were dropped: pop again.

    def _finish(
        self,
        task_id: str,
        now: float,
        requeue: Optional[ScheduledTask],
        token: Optional[str],
        wakeups: Optional[WakeupPolicy],
        keep_token: bool,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Steps[Finished]:
        if requeue is not None and requeue.task_id != task_id:
            raise ValueError("finish: requeue.task_id must be task_id")
        requeue_args: List[Any] = []
        if requeue is not None:
            _, key_hex, body, expires = self._task_args(requeue)
            requeue_args = [key_hex, body, expires]
        now_arg = layout.float_arg(now)
        failure = "1" if failed else "0"
        if wakeups is None:
            token_args: List[Any] = [now_arg, "", "", "", "00" + failure, ""]
        else:
            deadline = layout.float_arg(float(now) + wakeups.ttl)
            keep = ("1" if keep_token else "0") + ("1" if wakeups.defer else "0") + failure
            token_args = [now_arg, token or "", wakeups.max_wakeups, deadline, keep, nonce()]
        mode = "ack" if requeue is None else "requeue"

        def arguments(retry: bool) -> List[Any]:
            tail = [*requeue_args[:2], "1" if retry else "0", *requeue_args[2:]] if requeue_args else []
            if cost is not None:
                tail = [*(tail or ["", "", "", ""]), layout.float_arg(cost)]
            return [task_id, mode, *token_args, *tail]

        reply = yield Step("finish", arguments, note=AMBIGUOUS["finish"])
        done, fate = bool(int(reply[0])), int(reply[1])
        if fate == layout.TOKEN_DEFERRED:
            return Finished(done, retry_at=float(reply[2]), deferred=True)
        publish = tuple(raw.decode() for raw in reply[2:])
        if fate == layout.TOKEN_PASSED and token is not None:
            publish = (token, *publish)
        return Finished(done, publish, fate == layout.TOKEN_KEPT)

    def _ack(self, task_id: str) -> Steps[bool]:
        return bool((yield script("ack", task_id, note=AMBIGUOUS["ack"])) == layout.DONE)

    def _release(self, task_id: str) -> Steps[bool]:
        result = yield script("release", task_id, note=AMBIGUOUS["release"])
        if result == layout.RELEASE_CORRUPT:
            self._corrupt(task_id.encode(), "unreadable task record")
        return bool(result == layout.DONE)

    def _requeue(self, task: ScheduledTask) -> Steps[bool]:
        task_id, key_hex, body, expires = self._task_args(task)
        reply = yield Step(
            "requeue",
            lambda retry: [task_id, key_hex, body, "1" if retry else "0", expires],
            note=AMBIGUOUS["requeue"],
        )
        return reply in (layout.REQUEUE_DONE, layout.REQUEUE_ALREADY)

    def _extend(self, task_id: str, deadline: float) -> Steps[bool]:
        return bool((yield script("extend", task_id, layout.float_arg(deadline))) == layout.DONE)

    def _reclaim(self, now: float) -> Steps[List[ScheduledTask]]:
        reply = yield script("reclaim", layout.float_arg(now))
        end = 1 + 2 * int(reply[0])
        self._report_dropped(reply[end:])
        return (yield from self._decode_pairs(reply[1:end], waiting=True))

    def _remove(self, key: Key, task_id: str) -> Steps[bool]:
        reply = yield script("remove", layout.hex_key(key), task_id, note=AMBIGUOUS["remove"])
        return bool(reply == layout.DONE)

    def _charge(self, key: Key, extra: float) -> Steps[None]:
        yield script("charge", layout.hex_key(key), layout.float_arg(extra), note=AMBIGUOUS["charge"])

    def _expire(self, now: float, limit: int) -> Steps[List[ScheduledTask]]:
        reply = yield script("expire", layout.float_arg(now), int(limit), note=AMBIGUOUS["expire"])
        return (yield from self._decode_pairs(reply[1:], waiting=False))

    def _waiting(self, now: Optional[float]) -> Steps[int]:
        return int((yield script("waiting", layout.now_arg(now))))

    def _wait_limit(self, now: float, timeout: Optional[float]) -> Steps[Tuple[Optional[float], bool]]:
        """The check of ``wait.lua``: how long to block on the notification
        list (``None``: no limit; ``<= 0``: not at all) and whether the end
        of that block means "pop now" (a call is runnable, or a lease
        deadline) rather than "time is up"."""
        reply = yield script("wait", layout.float_arg(now))
        if int(reply[0]) == layout.WAIT_READY:
            return 0.0, True
        limit, capped = timeout, False
        if reply[1]:
            until = float(reply[1]) - float(now)
            if limit is None or until < limit:
                limit, capped = until, True
        cap = self._block_limit
        if cap is not None and (limit is None or limit > cap):
            limit, capped = cap, False
        return limit, capped

    def _repair(self, limit: int) -> Steps[List[CorruptTask]]:
        reply = yield script("repair", validation.check_limit(limit))
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
