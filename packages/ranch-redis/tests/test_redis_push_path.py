"""The one-task push (``push.lua``) and its short token decision, beside the in-memory storage.

Every ``lru_delay``/``lru_send`` runs ``push.lua``: the duplicate check is its
HSETNX, and the wake-up token decision usually ends after one ZCARD (tokens
outstanding already at ``max_wakeups``); the waiting count is read only when
the push's own call cannot settle it. These tests walk each branch and check
that a token is still minted exactly when the in-memory reference mints one.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, Iterator, List, Sequence

import pytest
import redis
from ranch_core import InMemoryStorage
from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import Storage
from ranch_redis import RedisStorage, layout
from ranch_redis.operations import retry_push

pytestmark = pytest.mark.redis


def task(task_id: str, key: str = "k", payload: object = 1) -> ScheduledTask:
    return ScheduledTask(task_id, key, payload, 0.0)


@pytest.fixture(params=["redis", "memory"])
def storage(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Storage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    redis_storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}")
    yield redis_storage
    redis_storage.close()


def test_push_mints_while_calls_wait_until_max_wakeups_are_in_flight(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=2, ttl=100.0)
    assert len(storage.push(task("a"), wakeups=policy)) == 1  # none in flight: its own call waits
    assert len(storage.push(task("b"), wakeups=policy)) == 1  # one in flight, two wait (counted)
    assert storage.push(task("c"), wakeups=policy) == []  # max_wakeups in flight
    assert storage.wakeup_status().in_flight == 2
    assert storage.push(task("d")) == []  # no policy, no token


def test_push_counts_leased_calls_out_of_the_waiting(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=5, ttl=100.0)
    assert len(storage.push(task("a"), wakeups=policy)) == 1
    assert storage.pop(1.0, 10.0).task is not None  # a leased without its token: one token, nothing waits
    assert storage.push(task("b"), wakeups=policy) == []  # one in flight for one waiting call
    assert len(storage.push(task("c"), wakeups=policy)) == 1  # one in flight, two wait
    assert storage.wakeup_status().in_flight == 2


def test_push_counts_held_tokens_against_max_wakeups(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=2, ttl=100.0)
    [token] = storage.push(task("a"), wakeups=policy)
    taken = storage.pop(1.0, 10.0, token=token, wakeups=policy)
    assert taken.task is not None and taken.minted == ()
    assert storage.wakeup_status().held == 1
    assert len(storage.push(task("b"), wakeups=policy)) == 1  # one held, none in flight: minted
    assert storage.push(task("c"), wakeups=policy) == []  # one held + one in flight = max_wakeups
    assert storage.wakeup_status().outstanding == 2


def test_push_many_mints_one_token_for_its_batch(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=3, ttl=100.0)
    assert len(storage.push_many([task("a"), task("b"), task("c")], wakeups=policy)) == 1
    assert len(storage.push_many([task("d"), task("e")], wakeups=policy)) == 1
    assert len(storage.push_many([task("f"), task("g")], wakeups=policy)) == 1
    assert storage.push_many([task("h"), task("i")], wakeups=policy) == []
    assert storage.push_many([task("j")], wakeups=policy) == []  # one task: push.lua
    assert storage.waiting() == 10 and storage.wakeup_status().in_flight == 3


def test_a_refused_push_mints_nothing_and_writes_nothing(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    assert len(storage.push(task("a"), wakeups=policy)) == 1
    with pytest.raises(DuplicateTask, match="'a' is already waiting or leased"):
        storage.push(ScheduledTask("a", "other", 2, 0.0), weight=0.5, tags={"t": "v"}, wakeups=policy)
    with pytest.raises(TypeError):
        storage.push(task("b", payload=object()), weight=0.5, wakeups=policy)
    assert storage.wakeup_status().in_flight == 1 and storage.waiting() == 1
    assert storage.keys_with_tag("t") == [] and storage.metadata("other").weight == 1.0


def test_push_sets_weight_tags_and_expiry_in_its_step(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    pushed = ScheduledTask("a", "k", [1], 0.0, expires_at=5.0)
    assert len(storage.push(pushed, weight=0.25, tags={"plan": "pro", "x": ""}, wakeups=policy)) == 1
    storage.push(task("b"), tags={"plan": "free"})
    meta = storage.metadata("k")
    assert meta.weight == 0.25 and meta.tags == {"plan": "free", "x": ""} and meta.pending_tasks == 2
    assert storage.keys_with_tag("x", "") == ["k"]
    assert [t.task_id for t in storage.expire(6.0, 10)] == ["a"]


def _commands(client: redis.Redis) -> Dict[str, int]:
    stats = client.info("commandstats")
    return {name[8:]: int(value["calls"]) for name, value in stats.items()}


def test_a_push_with_max_wakeups_outstanding_reads_one_token_count(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}")
    client = redis.Redis.from_url(redis_url)
    policy = WakeupPolicy(max_wakeups=1, ttl=100.0)
    assert len(storage.push(task("a"), wakeups=policy)) == 1
    for n in range(layout.NOTIFY_BOUND):  # fill the blocked pops' marks
        storage.push(task(f"fill{n}"))
    before = _commands(client)
    assert storage.push(task("b"), wakeups=policy) == []
    spent = {name: n - before.get(name, 0) for name, n in _commands(client).items()}
    spent = {name: n for name, n in spent.items() if n and name != "info"}
    # hget: the stats field ctl (are controls in use?), read before any write so that a
    # max_backlog set by another process refuses the push; in a namespace where no control
    # was ever set, nothing else of the controls is read. zadd: the key's new length in the
    # waiting index (kw: `ranch keys`, the exporter's top keys).
    assert spent == {"evalsha": 1, "hget": 1, "hsetnx": 1, "rpush": 1, "zadd": 1, "llen": 1, "zcard": 1}
    assert client.llen(layout.wake_key(storage.namespace)) == layout.NOTIFY_BOUND
    client.delete(layout.wake_key(storage.namespace))
    storage.push(task("c"))  # a mark again once the list has room
    assert client.llen(layout.wake_key(storage.namespace)) == 1
    storage.close()
    client.close()


def test_a_push_whose_reply_was_lost_is_recognised_by_its_retry(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}", backoff=0)
    real = storage._evalsha
    calls: List[Any] = []

    def reply_lost_once(name: str, args: Sequence[Any]) -> Any:
        calls.append(list(args))
        reply = real(name, args)
        if len(calls) == 1:
            raise redis.ConnectionError("connection dropped after the script ran")
        return reply

    storage._evalsha = reply_lost_once  # type: ignore[method-assign]
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    assert storage.push(task("a"), weight=0.5, tags={"t": "v"}, wakeups=policy) == []  # token: swept
    assert [args[7] for args in calls] == ["0", "1"]  # the retry flag
    assert storage.waiting() == 1 and storage.wakeup_status().in_flight == 1
    assert storage.metadata("k").weight == 0.5 and storage.keys_with_tag("t", "v") == ["k"]
    calls.clear()
    with pytest.raises(DuplicateTask):  # reply lost again: the retry finds another body under "a"
        storage.push(task("a", payload=2))
    storage.close()


def test_scripts_come_back_after_the_server_forgets_them(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}")
    client = redis.Redis.from_url(redis_url)
    storage.push(task("a"))
    client.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT, the script is loaded again
    assert storage.push(task("b"), wakeups=WakeupPolicy(max_wakeups=1, ttl=100.0)) != []
    assert storage.waiting() == 2
    storage.close()
    client.close()


def test_the_push_step_of_the_asyncio_storage_sends_the_same_arguments(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}")
    policy = WakeupPolicy(max_wakeups=2, ttl=100.0)
    steps = storage._push(task("a"), 0.5, {"t": "v"}, policy)
    step = next(steps)
    first, again = list(step.args(False)), list(step.args(True))
    assert (step.name, step.operation, first[7], again[7]) == ("push", "push", "0", "1")
    assert first[:7] == again[:7] and first[8:] == again[8:] and first[0] == "a" and first[6] == "0.5"
    assert first[3] == 2 and first[8:] == ["", "k", "t", layout.hex_key("t"), "v"]
    with pytest.raises(StopIteration) as done:
        steps.send(storage._evalsha("push", first))
    assert len(done.value.value) == 1  # the minted token
    storage.close()


def test_a_push_sends_only_the_arguments_it_needs(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace=f"push-{uuid.uuid4().hex}")
    policy = WakeupPolicy(max_wakeups=2, ttl=100.0)
    plain = storage._push_arguments(task("a"), None, None, policy)
    assert len(plain) == 6 and retry_push(plain)[6:] == ["", "1"]
    weighted = storage._push_arguments(task("b"), 0.5, None, None)
    assert weighted[3:] == ["", "", "", "0.5"] and retry_push(weighted)[6:] == ["0.5", "1"]
    expiring = storage._push_arguments(ScheduledTask("c", "k", 1, 0.0, expires_at=9.0), None, None, policy)
    assert expiring[6:] == ["", "0", "9.0"] and retry_push(expiring)[6:] == ["", "1", "9.0"]
    for args in (plain, weighted):
        first = storage._evalsha("push", retry_push(args))  # a retry whose first attempt never ran
        assert first == layout.PUSH_STORED or isinstance(first, bytes)  # stored (and a token minted)
        assert storage._evalsha("push", retry_push(args)) == layout.PUSH_ALREADY_STORED
        assert storage._evalsha("push", args) == layout.PUSH_DUPLICATE
    assert storage._evalsha("push", expiring) != layout.PUSH_DUPLICATE
    assert storage.waiting(now=1.0) == 3 and storage.metadata("k").weight == 0.5
    assert [t.task_id for t in storage.expire(10.0, 5)] == ["c"]
    storage.close()
