"""``RedisStorage``: Ranch's backlog and tracker in Redis, one Lua script per step."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

from ranch_core import validation
from ranch_core.errors import CorruptTask
from ranch_core.models import LRUKeyMetadata, PopResult, ScheduledTask, SystemStatus
from ranch_core.serializers import Serializer, SerializerSpec, get_serializer

from ranch_redis import layout, scripts
from ranch_redis.connection import Retrier, describe_client, describe_url, make_client

logger = logging.getLogger("ranch_redis")

CorruptCallback = Callable[[CorruptTask], None]

# What a caller should know when a write fails for good: if the connection
# dropped after the script was sent, Redis may have run it.
_MAY_HAVE_RUN = "if the connection dropped after the script was sent, Redis may have run it"
_AMBIGUOUS: Dict[str, str] = {
    "push": _MAY_HAVE_RUN + ": push again with the same task_id "
    "(ValueError 'already waiting or leased' means it was stored)",
    "pop": _MAY_HAVE_RUN + ": a task leased then comes back when its lease runs out",
    "ack": _MAY_HAVE_RUN,
    "release": _MAY_HAVE_RUN,
    "remove": _MAY_HAVE_RUN,
    "charge": _MAY_HAVE_RUN + " (do not charge again)",
}


class RedisStorage:
    """A :class:`ranch_core.protocols.Storage` kept in Redis, shared by every process.

    Push, pop, ack, release, extend, reclaim, remove and charge are each one
    Lua script, so each is atomic on the server: two workers never pop the
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
    given), counted in :attr:`corrupt_total` (this process) and skipped.
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
        self._base = layout.base(self.namespace)
        self._stats = self._base + "stats"
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
        note = _AMBIGUOUS.get(name, "")
        keys = [self._stats]
        return self._retry(lambda retry: script(keys=keys, args=args), operation=name, note=note)

    def _kkey(self, key: str) -> str:
        return f"{self._base}k:{layout.hex_key(key)}"

    def _corrupt(self, task_id: bytes, reason: str) -> None:
        self.corrupt_total += 1
        error = CorruptTask(
            f"namespace {self.namespace!r}: task {task_id.decode('utf-8', 'replace')!r} is corrupt "
            f"({reason}); removed"
        )
        logger.error("ranch: %s", error)
        if self.on_corrupt is not None:
            self.on_corrupt(error)

    def _decode(self, task_id: bytes, body: bytes) -> ScheduledTask:
        """The task in ``body``; ``ValueError`` if it cannot be decoded."""
        key, enqueued_at, expires_at, data = layout.decode_body(body)
        try:
            payload = self.serializer.loads(data)
        except Exception as exc:  # noqa: BLE001 - any decoder error means corrupt data
            raise ValueError(f"payload cannot be decoded with {self.serializer.name}: {exc!r}") from None
        return ScheduledTask(
            task_id=task_id.decode("utf-8"),
            key=key,
            payload=payload,
            enqueued_at=enqueued_at,
            expires_at=expires_at,
        )

    def _decode_pairs(self, flat: Sequence[bytes], *, waiting: bool) -> List[ScheduledTask]:
        """Decode ``[tid, body, ...]``; corrupt ones are reported and removed."""
        tasks = []
        for index in range(0, len(flat), 2):
            task_id, body = flat[index], flat[index + 1]
            try:
                tasks.append(self._decode(task_id, body))
            except ValueError as exc:
                self._corrupt(task_id, str(exc))
                if waiting:
                    self._remove_corrupt(task_id, body)
        return tasks

    def _remove_corrupt(self, task_id: bytes, body: bytes) -> None:
        parts = body.split(b",", 3)
        if len(parts) == 4:
            self._run("remove", parts[2], task_id)

    def _report_dropped(self, flat: Sequence[bytes]) -> None:
        for index in range(0, len(flat), 2):
            self._corrupt(flat[index], "unreadable task record")

    # -- Backlog -----------------------------------------------------------

    def push(self, task: ScheduledTask, *, weight: Optional[float] = None) -> None:
        """Append ``task`` to its key (see :meth:`ranch_core.protocols.Backlog.push`).

        The payload is encoded before anything is sent. If the connection
        drops after the script ran, the retry recognises the identical task
        already stored and succeeds without storing it twice.
        """
        args = self._push_args(task, weight)
        script = self._scripts["push"]

        def call(retry: bool) -> Any:
            return script(keys=[self._stats], args=[*args, "1" if retry else "0"])

        if self._retry(call, operation="push", note=_AMBIGUOUS["push"]) == 0:
            raise ValueError(f"task_id {task.task_id!r} is already waiting or leased")

    def _push_args(self, task: ScheduledTask, weight: Optional[float]) -> List[Any]:
        """Check ``task`` and encode it: the push script's arguments but the retry flag."""
        key = validation.check_key(task.key)
        task_id = validation.check_name(task.task_id, "task_id")
        weight = validation.check_optional_weight(weight)
        data = self.serializer.dumps(task.payload)
        key_hex = layout.hex_key(key)
        body = layout.encode_body(key_hex, task.enqueued_at, task.expires_at, data)
        weight_arg = "" if weight is None else layout.float_arg(weight)
        return [task_id, key_hex, body, weight_arg]

    def pop(self, now: float, lease_seconds: float) -> PopResult:
        """The fair choice at ``now``, leased (see :meth:`ranch_core.protocols.Backlog.pop`)."""
        now = float(now)
        args = (layout.float_arg(now), layout.float_arg(now + float(lease_seconds)))
        reclaimed: List[ScheduledTask] = []
        while True:
            reply = self._run("pop", *args)
            state, task_id, body = reply[0], reply[1], reply[2]
            expired: List[ScheduledTask] = []
            if len(reply) > 3:  # something was expired, reclaimed or found corrupt
                n_expired, n_reclaimed = 2 * int(reply[3]), 2 * int(reply[4])
                expired = self._decode_pairs(reply[5 : 5 + n_expired], waiting=False)
                reclaimed.extend(
                    self._decode_pairs(reply[5 + n_expired : 5 + n_expired + n_reclaimed], waiting=True)
                )
                self._report_dropped(reply[5 + n_expired + n_reclaimed :])
            if state == 1:
                try:
                    task = self._decode(task_id, body)
                except ValueError as exc:
                    self._corrupt(task_id, str(exc))
                    self._run("ack", task_id)
                else:
                    return PopResult(task, tuple(expired), tuple(reclaimed))
                if expired:
                    return PopResult(None, tuple(expired), tuple(reclaimed))
            elif state == 0 or expired:
                return PopResult(None, tuple(expired), tuple(reclaimed))
            # Only corrupt records were dropped: pop again.

    def ack(self, task_id: str) -> bool:
        """Finish a leased task; ``False`` if it holds no lease (a retried ack whose
        first attempt went through also answers ``False``)."""
        return bool(self._run("ack", task_id) == 1)

    def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key; ``False`` if not leased."""
        result = self._run("release", task_id)
        if result == -1:
            self._corrupt(task_id.encode(), "unreadable task record")
        return bool(result == 1)

    def requeue(self, task: ScheduledTask) -> bool:
        """Finish a lease and append ``task`` to the tail of its key in one step
        (see :meth:`ranch_core.protocols.Backlog.requeue`); ``False`` if not leased.
        A retry after a lost reply recognises its own write."""
        task_id, key_hex, body, _ = self._push_args(task, None)
        return bool(self._run("requeue", task_id, key_hex, body) in (1, 2))

    def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline``; ``False`` if not leased."""
        return bool(self._run("extend", task_id, layout.float_arg(deadline)) == 1)

    def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return those tasks."""
        reply = self._run("reclaim", layout.float_arg(now))
        end = 1 + 2 * int(reply[0])
        self._report_dropped(reply[end:])
        return self._decode_pairs(reply[1:end], waiting=True)

    def remove(self, key: str, task_id: str) -> bool:
        """Delete a waiting task of ``key``; ``False`` if it is not waiting there."""
        return bool(self._run("remove", layout.hex_key(key), task_id) == 1)

    def charge(self, key: str, extra: float) -> None:
        """Add ``extra`` to the key's pass. A retry after a lost reply may charge twice."""
        self._run("charge", layout.hex_key(key), layout.float_arg(extra))

    def waiting(self) -> int:
        """Tasks waiting (not leased), expired ones not yet dropped included."""
        return int(self._run("waiting"))

    # -- Tracker -----------------------------------------------------------

    def set_weight(self, key: str, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""
        validation.check_key(key)
        weight_arg = layout.float_arg(validation.check_weight(weight))
        self._retry(lambda retry: self.client.hset(self._kkey(key), "w", weight_arg))

    def set_custom_data(self, key: str, name: str, value: Any) -> None:
        """Store a JSON-encodable ``value`` under ``name``; ``TypeError`` otherwise."""
        validation.check_key(key)
        validation.check_name(name, "name")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"custom data {name!r} cannot be encoded as JSON: {exc}") from None
        self._retry(lambda retry: self.client.hset(self._kkey(key), "d:" + name, encoded))

    def add_tag(self, key: str, name: str, value: str) -> None:
        """Tag ``key`` with ``name=value`` (replacing an earlier value)."""
        validation.check_key(key)
        validation.check_name(name, "tag name")
        validation.check_tag_value(value)
        self._run("tag", layout.hex_key(key), key, name, layout.hex_key(name), value)

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[str]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""
        index_key = f"{self._base}tag:{layout.hex_key(name)}"
        tagged: Dict[bytes, bytes] = self._retry(lambda retry: self.client.hgetall(index_key))
        wanted = None if value is None else value.encode("utf-8")
        return sorted(k.decode("utf-8") for k, v in tagged.items() if wanted is None or v == wanted)

    def metadata(self, key: str) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen."""
        reply = self._run("metadata", layout.hex_key(key))
        pending = reply[0]
        state: Dict[bytes, bytes] = dict(zip(reply[1::2], reply[2::2]))
        tags: Dict[str, str] = {}
        custom: Dict[str, Any] = {}
        for field, raw in state.items():
            if field.startswith(b"t:"):
                tags[field[2:].decode("utf-8")] = raw.decode("utf-8")
            elif field.startswith(b"d:"):
                custom[field[2:].decode("utf-8")] = json.loads(raw)
        last = state.get(b"l")
        return LRUKeyMetadata(
            key=key,
            weight=float(state.get(b"w", b"1.0")),
            last_served=None if last is None else float(last),
            pending_tasks=int(pending),
            served_total=int(state.get(b"n", b"0")),
            tags=tags,
            custom_data=custom,
        )

    def status(self) -> SystemStatus:
        """Counters of the namespace, read in O(1)."""
        waiting, active, leased, expired, served = self._run("status")
        return SystemStatus(
            backlog_size=int(waiting),
            active_keys=int(active),
            leased=int(leased),
            expired_total=int(expired),
            served_total=int(served),
        )
