"""Wake-up latency of a blocked pop, and the CPU an idle waiting consumer uses.

Latency: a consumer waits in ``pop(timeout=...)`` on an empty backlog; a
producer (another thread for the in-memory storage, another process for
Redis) pushes one call carrying ``time.monotonic()`` (one system-wide clock
on Linux), and the consumer notes the time its pop returns. Before each
push the producer waits until the consumer has acknowledged the previous
call and then 1 ms more, so that the consumer is blocked again. p50, p95,
p99 and max over ``--tries`` pushes (default 1,000), for: in memory across
threads (``FairScheduler``), in memory to an asyncio consumer
(``AsyncFairScheduler``, the push from a thread), Redis across processes
(``RedisStorage``) and Redis across processes to an asyncio consumer
(``AsyncRedisStorage``). Redis is a throwaway ``redis-server`` on loopback.

Idle CPU: four processes each wait ``--idle`` seconds (default 10) in one
``pop(timeout=...)`` on an empty backlog (memory and Redis, blocking and
asyncio); each reports ``time.process_time()`` spent, as a share of one
core. The Redis commands the idle consumers sent meanwhile are counted from
``INFO commandstats``.

    python benchmarks/wakeup_latency.py [--tries 1000] [--idle 10]
        [--out benchmarks/results/wakeup_latency.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List

import redis
from ranch_core import AsyncFairScheduler, AsyncInMemoryStorage, FairScheduler, InMemoryStorage
from ranch_redis import AsyncRedisStorage, RedisStorage
from ranch_redis.testing import RedisServer

GAP = 0.001  # after the consumer is ready again, before the next push


def summary(latencies: List[float]) -> Dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return {
        "tries": len(ordered),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def produce(push: Callable[[float], None], ready: Any, tries: int) -> None:
    """Push ``tries`` calls, each once the consumer is ready again (``ready``: an Event)."""
    for _ in range(tries):
        if not ready.wait(30):
            raise RuntimeError("the consumer never got ready")
        ready.clear()
        time.sleep(GAP)
        push(time.monotonic())


def redis_producer(url: str, namespace: str, ready: Any, tries: int) -> None:
    scheduler = FairScheduler(RedisStorage.from_url(url, namespace=namespace))
    produce(lambda now: scheduler.push("k", now), ready, tries)


# -- latency ---------------------------------------------------------------


def memory_threads(tries: int) -> List[float]:
    scheduler = FairScheduler(InMemoryStorage())
    ready = threading.Event()
    producer = threading.Thread(target=produce, args=(lambda now: scheduler.push("k", now), ready, tries))
    producer.start()
    latencies = []
    for _ in range(tries):
        ready.set()
        task = scheduler.pop(timeout=30)
        latencies.append(time.monotonic() - task.payload)  # type: ignore[union-attr]
        scheduler.ack(task.task_id)  # type: ignore[union-attr]
    producer.join()
    return latencies


def memory_asyncio(tries: int) -> List[float]:
    storage = InMemoryStorage()
    pusher = FairScheduler(storage)
    ready = threading.Event()

    async def consume() -> List[float]:
        scheduler = AsyncFairScheduler(AsyncInMemoryStorage(storage))
        latencies = []
        for _ in range(tries):
            ready.set()
            task = await scheduler.pop(timeout=30)
            assert task is not None
            latencies.append(time.monotonic() - task.payload)
            await scheduler.ack(task.task_id)
        return latencies

    producer = threading.Thread(target=produce, args=(lambda now: pusher.push("k", now), ready, tries))
    producer.start()
    latencies = asyncio.run(consume())
    producer.join()
    return latencies


def redis_processes(url: str, tries: int, use_asyncio: bool) -> List[float]:
    namespace = f"wake-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    producer = context.Process(target=redis_producer, args=(url, namespace, ready, tries))
    producer.start()
    latencies: List[float] = []
    if use_asyncio:

        async def consume() -> None:
            async with AsyncRedisStorage.from_url(url, namespace=namespace) as storage:
                scheduler = AsyncFairScheduler(storage)
                for _ in range(tries):
                    ready.set()
                    task = await scheduler.pop(timeout=30)
                    assert task is not None
                    latencies.append(time.monotonic() - task.payload)
                    await scheduler.ack(task.task_id)

        asyncio.run(consume())
    else:
        scheduler = FairScheduler(RedisStorage.from_url(url, namespace=namespace))
        for _ in range(tries):
            ready.set()
            task = scheduler.pop(timeout=30)
            assert task is not None
            latencies.append(time.monotonic() - task.payload)
            scheduler.ack(task.task_id)
    producer.join(30)
    return latencies


# -- idle CPU --------------------------------------------------------------


def idle_consumer(kind: str, url: str, seconds: float, out: Any) -> None:
    """Wait ``seconds`` in one pop on an empty backlog; report the CPU seconds used."""
    namespace = f"idle-{uuid.uuid4().hex}"
    if kind.startswith("redis"):
        sync_storage: Any = RedisStorage.from_url(url, namespace=namespace)
        async_storage: Any = AsyncRedisStorage.from_url(url, namespace=namespace)
    else:
        sync_storage = InMemoryStorage()
        async_storage = AsyncInMemoryStorage()
    if kind.endswith("asyncio"):

        async def wait() -> Any:
            scheduler = AsyncFairScheduler(async_storage)
            await scheduler.pop()  # connect first
            start = time.process_time(), time.monotonic()
            got = await scheduler.pop(timeout=seconds)
            return start, got

        (cpu, wall), got = asyncio.run(wait())
    else:
        FairScheduler(sync_storage).pop()  # connect first
        cpu, wall = time.process_time(), time.monotonic()
        got = FairScheduler(sync_storage).pop(timeout=seconds)
    out.put((kind, time.process_time() - cpu, time.monotonic() - wall, got is None))


def idle_cpu(url: str, seconds: float) -> Dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    kinds = ["memory", "memory-asyncio", "redis", "redis-asyncio"]
    admin = redis.Redis.from_url(url)
    procs = [context.Process(target=idle_consumer, args=(kind, url, seconds, out)) for kind in kinds]
    for proc in procs:
        proc.start()
    time.sleep(min(2.0, seconds / 4))  # the consumers have connected and block
    before = admin.info("commandstats")
    results = [out.get(timeout=seconds + 60) for _ in kinds]
    after = admin.info("commandstats")
    for proc in procs:
        proc.join()
    commands = {
        name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
        for name in after
        if name not in ("cmdstat_info",) and after[name]["calls"] != before.get(name, {"calls": 0})["calls"]
    }
    rows = {
        kind: {
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "core_percent": 100 * cpu / wall,
            "timed_out_empty": empty,
        }
        for kind, cpu, wall, empty in results
    }
    return {"consumers": rows, "redis_commands_during_idle": commands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/results/wakeup_latency.json")
    args = parser.parse_args()
    with RedisServer() as server:
        latency = {
            "memory, threads (FairScheduler)": summary(memory_threads(args.tries)),
            "memory, thread -> asyncio (AsyncFairScheduler)": summary(memory_asyncio(args.tries)),
            "redis, process -> process (RedisStorage)": summary(
                redis_processes(server.url, args.tries, False)
            ),
            "redis, process -> asyncio (AsyncRedisStorage)": summary(
                redis_processes(server.url, args.tries, True)
            ),
        }
        idle = idle_cpu(server.url, args.idle)
        version = redis.Redis.from_url(server.url).info("server")["redis_version"]
    print(f"wake-up latency: push -> return of a blocked pop ({args.tries} tries)")
    print(f"{'':48} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, row in latency.items():
        figures = " ".join(f"{row[column]:8.3f}" for column in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        print(f"{name:48} {figures}")
    print(f"\nidle consumer: one pop(timeout={args.idle:g}) on an empty backlog")
    print(f"{'':48} {'CPU s':>8} {'% core':>8}")
    for name, row in idle["consumers"].items():
        print(f"{name:48} {row['cpu_seconds']:8.4f} {row['core_percent']:8.4f}")
    print("Redis commands sent while idle:", idle["redis_commands_during_idle"] or "none")
    result = {
        "latency": latency,
        "idle": idle,
        "tries": args.tries,
        "idle_seconds": args.idle,
        "python": sys.version.split()[0],
        "redis_server": version,
        "platform": platform.platform(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
