"""ranch-redis speed and memory, side by side with raw LPUSH/RPOP on the same server.

1. Throughput on one connection: ``RedisStorage.push``, ``pop`` (lease) and
   ``ack`` against raw ``LPUSH`` / ``RPOP`` of the same 100-byte payload, in
   the same run on the same server. The ratio is the figure (target >= 0.5).
2. Flatness: push and pop latency with 10 ... 100,000 active keys (each key
   keeps 2 tasks waiting), and with 1,000,000 tasks waiting; the slowdown
   against 10 keys is the figure (target <= 1.3).
3. Memory: Redis ``used_memory`` (``INFO memory``) per waiting task with a
   100-byte payload and 32-character task ids, minus the payload
   (target < 250 bytes overhead).

Starts its own ``redis-server`` on a free loopback port unless ``--url`` is
given (that server is FLUSHALLed). Prints a table and writes JSON.

    python benchmarks/redis_bench.py [--quick] [--url redis://...] [--out benchmarks/results/redis_bench.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import redis
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer

PAYLOAD = "x" * 98  # JSON-encoded: exactly 100 bytes
RAW_PAYLOAD = json.dumps(PAYLOAD).encode()
assert len(RAW_PAYLOAD) == 100


@contextlib.contextmanager
def server_url(url: Optional[str]) -> Iterator[str]:
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


def prefill(storage: RedisStorage, tasks: List[ScheduledTask], batch: int = 2000) -> None:
    """Push many tasks quickly: the push script, pipelined (each push still atomic)."""
    script = storage._scripts["push"]
    for start in range(0, len(tasks), batch):
        pipe = storage.client.pipeline(transaction=False)
        for task in tasks[start : start + batch]:
            script(keys=[storage._stats], args=[*storage._push_args(task, None), "0"], client=pipe)
        results = pipe.execute()
        assert all(r == 1 for r in results)


def best_rate(func: Any, count: int, repeats: int = 3) -> float:
    """Operations per second of ``func(i)`` over ``count`` calls, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(count):
            func(i)
        best = min(best, time.perf_counter() - start)
    return count / best


def throughput(url: str, n: int) -> Dict[str, Any]:
    client = redis.Redis.from_url(url)
    client.flushall()
    raw_key = "bench:raw"
    lpush = best_rate(lambda i: client.lpush(raw_key, RAW_PAYLOAD), n)
    rpop = best_rate(lambda i: client.rpop(raw_key), n)
    client.delete(raw_key)

    storage = RedisStorage(client, namespace="bench")
    ids = iter(uuid.uuid4().hex for _ in range(10 * n))
    keys = [f"tenant-{k}" for k in range(100)]
    now = time.time()

    def push(i: int) -> None:
        storage.push(ScheduledTask(next(ids), keys[i % 100], PAYLOAD, now))

    popped: List[str] = []

    def pop(i: int) -> None:
        task = storage.pop(now, 300.0).task
        assert task is not None
        popped.append(task.task_id)

    push_rate = best_rate(push, n)  # 3n tasks waiting afterwards
    pop_rate = best_rate(pop, n)  # 3n leased
    ack_rate = best_rate(lambda i: storage.ack(popped[i]), len(popped), repeats=1)
    client.close()
    return {
        "ops": n,
        "raw_lpush_per_s": lpush,
        "raw_rpop_per_s": rpop,
        "push_per_s": push_rate,
        "pop_per_s": pop_rate,
        "ack_per_s": ack_rate,
        "push_vs_lpush": push_rate / lpush,
        "pop_vs_rpop": pop_rate / rpop,
    }


def flatness_row(url: str, keys: int, waiting: int, steps: int) -> Dict[str, Any]:
    """Push and pop latency with ``keys`` active keys and ``waiting`` tasks waiting."""
    client = redis.Redis.from_url(url)
    client.flushall()
    storage = RedisStorage(client, namespace="flat")
    names = [f"tenant-{k}" for k in range(keys)]
    now = time.time()
    per_key = max(2, waiting // keys)
    counter = 0
    tasks = []
    for _ in range(per_key):
        for name in names:
            counter += 1
            tasks.append(ScheduledTask(f"pre-{counter}", name, PAYLOAD, now))
    prefill(storage, tasks)
    del tasks
    status = storage.status()
    assert status.active_keys == keys
    push_time = pop_time = 0.0
    best_push = best_pop = float("inf")
    for _ in range(3):
        push_time = pop_time = 0.0
        for i in range(steps):
            counter += 1
            task = ScheduledTask(f"s-{counter}", names[i % keys], PAYLOAD, now)
            t0 = time.perf_counter()
            storage.push(task)
            t1 = time.perf_counter()
            popped = storage.pop(now, 300.0).task
            t2 = time.perf_counter()
            assert popped is not None
            storage.ack(popped.task_id)
            push_time += t1 - t0
            pop_time += t2 - t1
        best_push, best_pop = min(best_push, push_time), min(best_pop, pop_time)
    after = storage.status()
    assert after.active_keys == keys and after.backlog_size == status.backlog_size
    client.close()
    return {
        "active_keys": keys,
        "waiting": status.backlog_size,
        "steps": steps,
        "push_us": best_push / steps * 1e6,
        "pop_us": best_pop / steps * 1e6,
        "push_per_s": steps / best_push,
        "pop_per_s": steps / best_pop,
    }


def memory(url: str, n: int, keys: int) -> Dict[str, Any]:
    client = redis.Redis.from_url(url)
    client.flushall()
    storage = RedisStorage(client, namespace="mem")
    # Keys exist (with their state) before the baseline: measure the tasks alone.
    prefill(storage, [ScheduledTask(f"warm-{k}", f"tenant-{k}", PAYLOAD, 0.0) for k in range(keys)])
    before = int(client.info("memory")["used_memory"])
    now = time.time()
    prefill(storage, [ScheduledTask(uuid.uuid4().hex, f"tenant-{i % keys}", PAYLOAD, now) for i in range(n)])
    after = int(client.info("memory")["used_memory"])
    per_task = (after - before) / n
    client.close()
    return {
        "tasks": n,
        "keys": keys,
        "payload_bytes": len(RAW_PAYLOAD),
        "bytes_per_task": per_task,
        "overhead_bytes_per_task": per_task - len(RAW_PAYLOAD),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 30 s)")
    parser.add_argument(
        "--url", default=None, help="use this Redis (it is FLUSHALLed) instead of starting one"
    )
    parser.add_argument("--out", default="benchmarks/results/redis_bench.json")
    args = parser.parse_args(argv)

    n = 5_000 if args.quick else 20_000
    steps = 1_000 if args.quick else 5_000
    key_counts = [10, 1_000, 10_000, 100_000] if args.quick else [10, 100, 1_000, 10_000, 100_000]
    big_backlog = 200_000 if args.quick else 1_000_000
    with server_url(args.url) as url:
        info = redis.Redis.from_url(url).info("server")
        tp = throughput(url, n)
        flat = [flatness_row(url, k, 2 * k, steps) for k in key_counts]
        flat.append(flatness_row(url, 1_000, big_backlog, steps))
        mem = memory(url, 20_000 if args.quick else 100_000, 100)
        redis.Redis.from_url(url).flushall()

    base = flat[0]
    for row in flat:
        row["push_slowdown_vs_10_keys"] = row["push_us"] / base["push_us"]
        row["pop_slowdown_vs_10_keys"] = row["pop_us"] / base["pop_us"]

    print(f"redis-server {info['redis_version']}, Python {platform.python_version()}, one connection")
    print()
    print(f"{'operation':<22}{'ops/s':>12}{'raw':>12}{'ratio':>8}")
    for label, ours, raw, ratio in (
        ("push (vs LPUSH)", "push_per_s", "raw_lpush_per_s", "push_vs_lpush"),
        ("pop (vs RPOP)", "pop_per_s", "raw_rpop_per_s", "pop_vs_rpop"),
    ):
        print(f"{label:<22}{tp[ours]:>12,.0f}{tp[raw]:>12,.0f}{tp[ratio]:>8.2f}")
    print(f"{'ack':<22}{tp['ack_per_s']:>12,.0f}")
    print()
    print(f"{'active keys':>12}{'waiting':>11}{'push us':>10}{'pop us':>9}{'push x':>8}{'pop x':>8}")
    for row in flat:
        print(
            f"{row['active_keys']:>12,}{row['waiting']:>11,}{row['push_us']:>10.1f}{row['pop_us']:>9.1f}"
            f"{row['push_slowdown_vs_10_keys']:>8.2f}{row['pop_slowdown_vs_10_keys']:>8.2f}"
        )
    print()
    print(
        f"memory: {mem['bytes_per_task']:.0f} bytes per waiting task with a "
        f"{mem['payload_bytes']}-byte payload = {mem['overhead_bytes_per_task']:.0f} bytes overhead"
        f" ({mem['tasks']:,} tasks, {mem['keys']} keys)"
    )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "python": sys.version,
                "redis": info["redis_version"],
                "quick": args.quick,
                "throughput": tp,
                "flatness": flat,
                "memory": mem,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
