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

Ours and raw are measured in interleaved rounds (and every flatness scenario
lives in its own namespace on one server, measured round robin); the best
round of each counts, so load from other processes hits both sides alike.

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
from typing import Any, Dict, Iterator, List, Optional, Tuple

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


def rate(func: Any, count: int) -> float:
    """Operations per second of ``func(i)`` over ``count`` calls."""
    start = time.perf_counter()
    for i in range(count):
        func(i)
    return count / (time.perf_counter() - start)


def throughput(url: str, n: int, rounds: int) -> Dict[str, Any]:
    """Ours and raw, interleaved in ``rounds`` rounds; the best round of each counts.

    Interleaving makes the ratio robust to other load on the machine: both
    sides see the same noise.
    """
    client = redis.Redis.from_url(url)
    client.flushall()
    raw_key = "bench:raw"
    storage = RedisStorage(client, namespace="bench")
    keys = [f"tenant-{k}" for k in range(100)]
    now = time.time()
    popped: List[str] = []

    def push(i: int) -> None:
        storage.push(ScheduledTask(uuid.uuid4().hex, keys[i % 100], PAYLOAD, now))

    def pop(i: int) -> None:
        task = storage.pop(now, 300.0).task
        assert task is not None
        popped.append(task.task_id)

    best: Dict[str, float] = {}
    for _ in range(rounds):
        for name, func in (
            ("raw_lpush_per_s", lambda i: client.lpush(raw_key, RAW_PAYLOAD)),
            ("push_per_s", push),
            ("raw_rpop_per_s", lambda i: client.rpop(raw_key)),
            ("pop_per_s", pop),
            ("ack_per_s", lambda i: storage.ack(popped[-1 - i])),
        ):
            best[name] = max(best.get(name, 0.0), rate(func, n))
        del popped[-n:]
    client.close()
    return {
        "ops_per_round": n,
        "rounds": rounds,
        **best,
        "push_vs_lpush": best["push_per_s"] / best["raw_lpush_per_s"],
        "pop_vs_rpop": best["pop_per_s"] / best["raw_rpop_per_s"],
    }


def prepare_flat(client: redis.Redis, keys: int, waiting: int) -> RedisStorage:
    """A namespace with ``keys`` active keys and ``waiting`` tasks (at least 2 per key)."""
    storage = RedisStorage(client, namespace=f"flat-{keys}-{waiting}")
    names = [f"tenant-{k}" for k in range(keys)]
    per_key = max(2, waiting // keys)
    for start in range(0, per_key * keys, 100_000):
        chunk = range(start, min(start + 100_000, per_key * keys))
        prefill(storage, [ScheduledTask(f"pre-{i}", names[i % keys], PAYLOAD, 0.0) for i in chunk])
    assert storage.status().active_keys == keys
    return storage


def flat_round(storage: RedisStorage, steps: int, now: float) -> Tuple[float, float]:
    """Seconds spent in ``steps`` pops and in ``steps`` pushes.

    Each step pops the fair choice, pushes a task to the key it came from and
    acks: the backlog and the number of active keys stay the same.
    """
    push_time = pop_time = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        popped = storage.pop(now, 300.0).task
        t1 = time.perf_counter()
        assert popped is not None
        task = ScheduledTask(uuid.uuid4().hex, popped.key, PAYLOAD, now)
        t2 = time.perf_counter()
        storage.push(task)
        t3 = time.perf_counter()
        storage.ack(popped.task_id)
        pop_time += t1 - t0
        push_time += t3 - t2
    return push_time, pop_time


def flatness(url: str, scenarios: List[Tuple[int, int]], steps: int, rounds: int) -> List[Dict[str, Any]]:
    """Push/pop latency per (active keys, waiting) scenario, all on one server, interleaved."""
    client = redis.Redis.from_url(url)
    client.flushall()
    storages = [prepare_flat(client, keys, waiting) for keys, waiting in scenarios]
    sizes = [storage.status().backlog_size for storage in storages]
    best = [(float("inf"), float("inf"))] * len(storages)
    now = time.time()
    for _ in range(rounds):
        for index, storage in enumerate(storages):
            push_time, pop_time = flat_round(storage, steps, now)
            best[index] = (min(best[index][0], push_time), min(best[index][1], pop_time))
    rows = []
    for (keys, _), storage, size, (push_time, pop_time) in zip(scenarios, storages, sizes, best):
        status = storage.status()
        assert status.active_keys == keys and status.backlog_size == size
        rows.append(
            {
                "active_keys": keys,
                "waiting": size,
                "steps": steps,
                "rounds": rounds,
                "push_us": push_time / steps * 1e6,
                "pop_us": pop_time / steps * 1e6,
            }
        )
    client.flushall()
    client.close()
    return rows


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

    n = 2_000 if args.quick else 5_000
    rounds = 3 if args.quick else 5
    steps = 500 if args.quick else 2_000
    key_counts = [10, 1_000, 100_000] if args.quick else [10, 100, 1_000, 10_000, 100_000]
    scenarios = [(k, 2 * k) for k in key_counts]
    scenarios.append((1_000, 200_000 if args.quick else 1_000_000))
    with server_url(args.url) as url:
        info = redis.Redis.from_url(url).info("server")
        tp = throughput(url, n, rounds)
        flat = flatness(url, scenarios, steps, rounds)
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
