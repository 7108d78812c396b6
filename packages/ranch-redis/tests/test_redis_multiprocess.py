"""Many processes on one Redis: every task popped exactly once, none lost."""

from __future__ import annotations

import multiprocessing
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import List

import pytest
from ranch_redis import RedisStorage

sys.path.insert(0, str(Path(__file__).parent))  # spawned children import ranch_redis_procs

import ranch_redis_procs

PRODUCERS = 2
CONSUMERS = 4
PER_PRODUCER = 5_000
KEYS = 100


@pytest.mark.slow
def test_four_poppers_two_pushers_exactly_once(redis_url: str) -> None:
    namespace = f"mp-{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    out = ctx.Queue()
    consumers = [
        ctx.Process(target=ranch_redis_procs.pop_tasks, args=(redis_url, namespace, done, out))
        for _ in range(CONSUMERS)
    ]
    producers = [
        ctx.Process(target=ranch_redis_procs.push_tasks, args=(redis_url, namespace, p, PER_PRODUCER, KEYS))
        for p in range(PRODUCERS)
    ]
    processes = consumers + producers
    try:
        for process in processes:
            process.start()
        for process in producers:
            process.join(120)
            assert process.exitcode == 0
        done.set()
        popped: List[str] = []
        for _ in consumers:
            popped.extend(out.get(timeout=120))
        for process in consumers:
            process.join(30)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()

    counts = Counter(popped)
    assert len(popped) == PRODUCERS * PER_PRODUCER
    assert max(counts.values()) == 1
    assert set(popped) == {f"p{p}-{i}" for p in range(PRODUCERS) for i in range(PER_PRODUCER)}
    storage = RedisStorage.from_url(redis_url, namespace=namespace)
    status = storage.status()
    assert (status.backlog_size, status.active_keys, status.leased) == (0, 0, 0)
    assert status.served_total == PRODUCERS * PER_PRODUCER
    assert sum(storage.metadata(f"key{k}").served_total for k in range(KEYS)) == PRODUCERS * PER_PRODUCER
