"""The metrics the steps keep agree with the calls run: waits, run times, served, expired, retried, failed."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from typing import Dict, Iterator, List, Tuple

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage, layout, scripts
from ranch_redis.metrics import WaitHistogram

KEYS = ["a", "b", "c"]
Op = Tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "push",
                "push",
                "push_expiring",
                "push_delayed",
                "pop_ack",
                "pop_finish",
                "pop_fail",
                "pop_retry",
                "pop_release",
                "tick",
                "expire",
            ]
        ),
        st.integers(0, len(KEYS) - 1),
        st.integers(1, 400),
    ),
    min_size=10,
    max_size=50,
)


@pytest.fixture(scope="module")
def client(redis_server: object) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
    yield c
    c.close()


def histogram(waits: List[float]) -> Tuple[int, ...]:
    buckets = [0] * (len(layout.WAIT_BOUNDS) + 1)
    for wait in waits:
        index = next(
            (i for i, bound in enumerate(layout.WAIT_BOUNDS) if wait <= bound), len(layout.WAIT_BOUNDS)
        )
        buckets[index] += 1
    return tuple(buckets)


@settings(max_examples=60)
@given(steps=ops)
def test_metrics_count_the_calls_run(client: redis.Redis, steps: List[Op]) -> None:
    storage = RedisStorage(client, namespace=f"met-{uuid.uuid4().hex}")
    now = 1000.0
    waits: Dict[str, List[float]] = {k: [] for k in KEYS}
    expired: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    runs: Dict[str, List[float]] = {k: [] for k in KEYS}
    started: Dict[str, float] = {}  # leased task id -> when its pop leased it
    for n, (op, k, amount) in enumerate(steps):
        key = KEYS[k]
        if op.startswith("push"):
            expires = now + amount / 100 if op == "push_expiring" else None
            # a delayed call's wait counts from its due time (its enqueued_at once it is due)
            due = now + amount / 100 if op == "push_delayed" else None
            storage.push(ScheduledTask(f"t{n}", key, n, now, expires, due))
        elif op == "tick":
            now += amount / 100  # 0.01 ... 4 s: waits spread over the buckets
        elif op == "expire":
            expired.update(task.key for task in storage.expire(now, 100))
        else:
            result = storage.pop(now, 60.0)
            expired.update(task.key for task in result.expired)
            task = result.task
            if task is None:
                continue
            waits[task.key].append(max(now - task.enqueued_at, 0.0))
            started[task.task_id] = now
            if op == "pop_ack":  # no time given: no run time counted
                assert storage.ack(task.task_id)
            elif op in ("pop_finish", "pop_fail"):
                now += amount / 200  # it runs a while
                runs[task.key].append(now - started[task.task_id])
                failed[task.key] += op == "pop_fail"
                assert storage.finish(task.task_id, now, failed=op == "pop_fail").done
            elif op == "pop_retry":
                retried[task.key] += 1
                assert storage.requeue(task)  # same enqueued_at: its next wait counts from it
            else:
                assert storage.release(task.task_id)
    got = storage.metrics(len(KEYS), now=None)
    everything = [w for ws in waits.values() for w in ws]
    assert got.served == len(everything) == got.wait.count
    assert got.wait.buckets == histogram(everything)
    assert math.isclose(got.wait.total, sum(everything), abs_tol=1e-6)
    assert got.expired == sum(expired.values())
    all_runs = [r for rs in runs.values() for r in rs]
    assert got.run.buckets == histogram(all_runs) and got.failed == sum(failed.values())
    assert math.isclose(got.run.total, sum(all_runs), abs_tol=1e-6)
    for row in got.top_keys:
        assert row.served == len(waits[row.key]) == row.wait.count
        assert row.wait.buckets == histogram(waits[row.key])
        assert (row.expired, row.retried) == (expired[row.key], retried[row.key])
        assert row.run.buckets == histogram(runs[row.key]) and row.failed == failed[row.key]
        assert row.waiting == client.llen(layout.queue_key(storage.namespace, row.key))


def test_the_scripts_and_layout_share_the_wait_bounds() -> None:
    text = scripts.source("pop")
    lua = text.split("local WAIT_BOUNDS = {", 1)[1].split("}", 1)[0]
    assert tuple(float(x) for x in lua.split(",")) == layout.WAIT_BOUNDS


def test_quantiles_and_bad_input() -> None:
    hist = WaitHistogram((1, 0, 0, 8, 1) + (0,) * 7, 3.0)
    assert hist.count == 10 and hist.quantile(0.5) == 0.5 and hist.quantile(0.95) == 1.0
    assert WaitHistogram().quantile(0.95) is None
    with pytest.raises(ValueError, match="q must be in"):
        hist.quantile(0)
    storage = RedisStorage(redis.Redis(), namespace="unused")
    with pytest.raises(ValueError, match="limit must be in"):
        storage.metrics(-1)
    with pytest.raises(TypeError, match="limit must be an int"):
        storage.metrics("5")  # type: ignore[arg-type]


def test_a_corrupt_counter_starts_again(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace=f"met-{uuid.uuid4().hex}")
    storage.push(ScheduledTask("t1", "a", 1, 10.0))
    client.hset(layout.key_state_key(storage.namespace, "a"), mapping={"h0": "junk", "hs": "nan"})
    client.hset(layout.stats_key(storage.namespace), "h0", "1.5")
    assert storage.pop(10.0, 60.0).task is not None  # the step completes
    got = storage.metrics(1)
    assert got.wait.buckets[0] == 1 and got.wait.total == 0.0
    assert storage.metrics(0).top_keys == ()
