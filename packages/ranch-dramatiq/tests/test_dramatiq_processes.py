"""``dramatiq`` CLI worker processes on a real Redis: exactly once, and SIGKILL mid-call."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Dict, List

import pytest
import redis

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def finished(client: redis.Redis) -> Dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall("ranch-test:finished").items()}


def started(client: redis.Redis) -> List[List[str]]:
    return [entry.decode().split(" ") for entry in client.lrange("ranch-test:started", 0, -1)]


def test_several_workers_and_producers_run_every_call_once(
    redis_url: str, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    client = redis.Redis.from_url(redis_url)
    cli_workers.start(processes=2, threads=4)
    cli_workers.start(processes=1, threads=4)
    wait(lambda: int(client.get(testapp.READY) or 0) >= 3, timeout=60)
    broker, record_call = testapp.build(redis_url)
    sent: List[str] = []
    lock = threading.Lock()

    def produce(producer: int) -> None:
        for i in range(100):
            message = record_call.lru_send(f"tenant{(producer * 7 + i) % 9}", f"p{producer}-{i}")
            with lock:
                sent.append(message.message_id)

    producers = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    assert len(set(sent)) == 400
    wait(lambda: len(finished(client)) >= 400, timeout=60)
    done = finished(client)
    assert set(done) == set(sent)
    assert all(count == 1 for count in done.values())
    assert len(started(client)) == 400
    assert len({pid for pid, _ in started(client)}) >= 2  # the calls were spread over processes
    status = record_call.get_system_status()
    assert status["backlog_size"] == 0 and status["served_total"] == 400
    wait(lambda: record_call.get_system_status()["leased"] == 0, timeout=10)
    broker.close()
    client.close()


def test_sigkill_mid_call_still_runs_every_call(
    redis_url: str, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    client = redis.Redis.from_url(redis_url)
    lease = 1.5
    cli_workers.start(processes=1, threads=2, lease=lease, prefetch=1)
    cli_workers.start(processes=1, threads=2, lease=lease, prefetch=1)
    wait(lambda: int(client.get(testapp.READY) or 0) >= 2, timeout=60)
    broker, record_call = testapp.build(redis_url, lease_seconds=lease)
    victim = record_call.lru_send("slow", "victim", seconds=3.0).message_id
    others = [record_call.lru_send(f"key{i % 4}", f"c{i}", seconds=0.05).message_id for i in range(30)]
    # the process running the victim call
    pid = wait(lambda: next((int(p) for p, mid in started(client) if mid == victim), None), timeout=30)
    os.kill(pid, signal.SIGKILL)
    wait(lambda: len(finished(client)) >= 31, timeout=45)
    done = finished(client)
    assert set(done) == {victim, *others}
    assert all(count == 1 for count in done.values())
    runs = [p for p, mid in started(client) if mid == victim]
    assert len(runs) == 2 and int(runs[1]) != pid  # started, killed, reclaimed, run again elsewhere
    assert record_call.get_system_status()["backlog_size"] == 0
    broker.close()
    client.close()
