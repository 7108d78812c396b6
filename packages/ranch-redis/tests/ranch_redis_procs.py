"""Process bodies for the multi-process tests (importable by spawned children)."""

from __future__ import annotations

import time
from typing import Any, List

from ranch_core import FairScheduler
from ranch_redis import RedisStorage


def push_tasks(url: str, namespace: str, producer: int, count: int, keys: int) -> None:
    """Push ``count`` tasks named ``p<producer>-<i>`` round robin over ``keys`` keys."""
    scheduler = FairScheduler(RedisStorage.from_url(url, namespace=namespace))
    for i in range(count):
        key = f"key{(i * 7 + producer) % keys}"
        scheduler.push(key, {"producer": producer, "i": i, "key": key}, task_id=f"p{producer}-{i}")


def pop_tasks(url: str, namespace: str, producers_done: Any, out: Any) -> None:
    """Pop and ack until the producers are done and nothing is left; report what was popped."""
    scheduler = FairScheduler(RedisStorage.from_url(url, namespace=namespace), lease_seconds=60.0)
    popped: List[str] = []
    while True:
        finished = producers_done.is_set()  # before the pop: every push is stored by then
        task = scheduler.pop(timeout=0.5)  # blocks until a push wakes it
        if task is None:
            if finished:
                break
            continue
        assert task.payload["key"] == task.key
        popped.append(task.task_id)
        assert scheduler.ack(task.task_id)
    out.put(popped)


def hold_leases(url: str, namespace: str, count: int, lease_seconds: float, ready: Any, out: Any) -> None:
    """Pop ``count`` tasks, report them, then hang without acking (until killed)."""
    scheduler = FairScheduler(RedisStorage.from_url(url, namespace=namespace), lease_seconds=lease_seconds)
    taken = []
    for _ in range(count):
        task = scheduler.pop()
        assert task is not None
        taken.append(task.task_id)
    out.put((taken, time.time()))
    ready.set()
    time.sleep(3600)
