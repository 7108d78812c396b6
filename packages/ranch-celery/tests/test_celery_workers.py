"""Several worker processes on a real Redis: exactly once, and nothing lost when a worker is killed."""

from __future__ import annotations

import signal
import threading
from typing import List

import pytest
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_two_workers_four_producers_every_call_runs_exactly_once(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    mark = app.tasks["t.mark"]
    first = start_worker("w1", pool="prefork", concurrency=2)
    second = start_worker("w2", pool="threads", concurrency=4)
    results: List[List[object]] = [[] for _ in range(4)]
    errors: List[BaseException] = []

    def produce(producer: int) -> None:
        try:
            for n in range(100):
                token = f"p{producer}-{n}"
                results[producer].append(mark.lru_delay(f"key{n % 8}", token))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    expected = {f"p{p}-{n}" for p in range(4) for n in range(100)}
    wait_for(lambda: rec.llen("done") >= 400, 90, "400 executions", first)
    for producer, sent in enumerate(results):
        assert [r.get(timeout=30) for r in sent] == [f"p{producer}-{n}" for n in range(100)]
    wait_for(lambda: mark.get_system_status()["leased"] == 0, 10, "all leases acked", second)
    done = rec.lrange("done", 0, -1)
    assert len(done) == 400 and set(done) == expected
    status = mark.get_system_status()
    assert status["backlog_size"] == 0 and status["served_total"] == 400
    assert rec.smembers("hosts") == {first.name, second.name}  # both workers took part


def test_sigkill_mid_task_every_call_still_runs(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url, lease=2.0)
    slow = app.tasks["t.slow"]
    env = {"RANCH_TEST_LEASE": "2", "RANCH_TEST_SWEEP": "0.3"}
    tokens = [f"c{n}" for n in range(10)]
    results = [slow.lru_delay(f"key{n % 3}", token, 0.5) for n, token in enumerate(tokens)]
    victim = start_worker("victim", env=env)
    wait_for(lambda: rec.llen("started") >= 2, 20, "two calls to start", victim)
    victim.kill(signal.SIGKILL)
    victim.process.wait(10)
    started_in_victim = rec.lrange("started", 0, -1)
    finished_in_victim = rec.lrange("finished", 0, -1)
    killed = [t for t in started_in_victim if t not in finished_in_victim]
    assert len(killed) == 1  # the call that was running when the worker died

    rescuer = start_worker("rescuer", pool="threads", concurrency=3, env=env)  # a call of each key at once
    wait_for(lambda: set(rec.lrange("finished", 0, -1)) == set(tokens), 60, "every call to finish", rescuer)
    assert [r.get(timeout=20) for r in results] == tokens
    started = rec.lrange("started", 0, -1)
    assert started.count(killed[0]) == 2  # reclaimed from the dead worker and run again
    assert sorted(rec.lrange("finished", 0, -1)) == sorted(tokens)  # each finished exactly once
    wait_for(lambda: slow.get_system_status()["leased"] == 0, 10, "all leases acked", rescuer)
    assert slow.get_system_status()["backlog_size"] == 0


def test_a_call_whose_wake_up_was_lost_still_runs(redis_url, start_worker, rec) -> None:
    from ranch_core.calls import Call

    app = make_app(redis_url)
    record = app.tasks["t.record"]
    # Store a call without publishing its wake-up, as when the worker that had
    # prefetched that wake-up was killed (the broker would redeliver it only
    # after its visibility timeout).
    record.lru_dispatcher.scheduler.push(
        "orphan", Call(args=["lost", "orphan", 0], options={"task": "t.record"}).to_payload()
    )
    assert record.get_system_status()["backlog_size"] == 1
    worker = start_worker(env={"RANCH_TEST_SWEEP": "0.2"})
    wait_for(lambda: rec.lrange("order:lost", 0, -1) == ["orphan:0"], 20, "the orphaned call to run", worker)
    assert "wake-ups" in worker.log.read_text()
