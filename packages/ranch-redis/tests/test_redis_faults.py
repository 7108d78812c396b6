"""Faults with real processes: a worker killed holding leases, Redis going down and coming back."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import List

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.errors import StorageUnavailable
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer, block_server, free_port

sys.path.insert(0, str(Path(__file__).parent))  # spawned children import ranch_redis_procs

import ranch_redis_procs

LEASE = 2.5


@pytest.mark.slow
def test_sigkilled_worker_leases_come_back_after_lease_seconds(redis_url: str) -> None:
    namespace = f"kill-{uuid.uuid4().hex}"
    reclaimed: List[str] = []
    scheduler = FairScheduler(
        RedisStorage.from_url(redis_url, namespace=namespace),
        lease_seconds=LEASE,
        on_reclaimed=lambda task: reclaimed.append(task.task_id),
    )
    for i in range(8):
        scheduler.push(f"k{i % 4}", {"i": i}, task_id=f"t{i}")

    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    worker = ctx.Process(
        target=ranch_redis_procs.hold_leases, args=(redis_url, namespace, 5, LEASE, ready, out)
    )
    worker.start()
    try:
        taken, popped_at = out.get(timeout=60)
        assert ready.wait(10)
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join(10)
        assert worker.exitcode == -signal.SIGKILL
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()

    # The other three run; the killed worker's five stay leased until their deadline.
    ran = []
    while (task := scheduler.pop()) is not None:
        ran.append(task.task_id)
        scheduler.ack(task.task_id)
    assert time.time() < popped_at + LEASE, "test machine too slow to observe the lease"
    assert sorted(ran) == sorted({f"t{i}" for i in range(8)} - set(taken))
    assert scheduler.status().leased == 5

    back = []
    while len(back) < len(taken):
        task = scheduler.pop(timeout=5 * LEASE)  # blocks until the next of those leases runs out
        assert task is not None
        back.append(task.task_id)
        assert scheduler.ack(task.task_id)
    assert scheduler.pop() is None
    assert sorted(back) == sorted(taken)
    assert sorted(reclaimed) == sorted(taken)
    status = scheduler.status()
    assert (status.backlog_size, status.leased, status.served_total) == (0, 0, 13)


@pytest.mark.slow
def test_redis_down_raises_within_budget_and_recovers_after_restart() -> None:
    port = free_port()
    password = "s3cret-pw"
    args = ["--appendonly", "yes", "--appendfsync", "always", "--requirepass", password]
    with RedisServer(port, args) as server:
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        storage = RedisStorage.from_url(
            url, namespace="down", retries=3, backoff=0.05, max_backoff=0.2, socket_timeout=2.0
        )
        budget = storage._retry.budget()
        assert budget == pytest.approx(0.05 + 0.1 + 0.2)

        # Push continuously; after 200 pushes a crash of the server interrupts the loop mid-run
        # (counted, not timed: how many pushes fit in a moment depends on the machine's load).
        pushed: List[str] = []
        killer = threading.Thread(target=server.kill)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as raised:
            for i in range(10_000_000):
                if i == 200:
                    killer.start()
                storage.push(ScheduledTask(f"t{i}", f"k{i % 10}", {"i": i}, float(i)))
                pushed.append(f"t{i}")
                if time.monotonic() - started > 60:
                    pytest.fail("server was not killed")
        killer.join()
        assert len(pushed) >= 200
        message = str(raised.value)
        assert f"127.0.0.1:{port}" in message and "4 attempts" in message
        assert password not in message

        # Every call fails the same way, after the whole retry budget and not much later:
        # refused connects are immediate, so 5x the budget plus 1 s is slack for a loaded machine.
        for call in (storage.status, lambda: storage.pop(1.0, 5.0), lambda: storage.ack("t0")):
            t0 = time.monotonic()
            with pytest.raises(StorageUnavailable):
                call()
            assert budget <= time.monotonic() - t0 < 5 * budget + 1.0

        # Back on the same port, from its append-only file: the same storage works again.
        # It holds every push that returned; the push that raised is either stored whole
        # (the server ran it and died before replying) or not at all, never half.
        server.start()
        failed = f"t{len(pushed)}"
        # Killed while the push was in flight: Redis may have run it, and the message says so.
        # Killed between two pushes: the client finds the connection closed before sending,
        # every attempt is refused, and the message says nothing was stored.
        ambiguous = "push again with the same task_id" in message
        assert ambiguous or "nothing was stored or changed" in message
        try:
            storage.push(ScheduledTask(failed, f"k{len(pushed) % 10}", {"i": len(pushed)}, 0.0))
            outcome = "not stored, pushed again"
        except ValueError:
            outcome = "stored before the crash"
        assert ambiguous or outcome == "not stored, pushed again"
        assert storage.waiting() == len(pushed) + 1
        scheduler = FairScheduler(storage)
        popped = []
        while (task := scheduler.pop()) is not None:
            popped.append(task.task_id)
            assert task.payload == {"i": int(task.task_id[1:])}, outcome
            assert scheduler.ack(task.task_id)
        assert sorted(popped) == sorted([*pushed, failed])
        storage.push(ScheduledTask("after", "k", 1, 0.0))
        assert storage.status().backlog_size == 1
        storage.close()


def test_retry_rides_out_a_short_outage() -> None:
    """A restart shorter than the retry budget is invisible to the caller."""
    with RedisServer() as server:
        storage = RedisStorage.from_url(server.url, namespace="blip", retries=5, backoff=0.2, max_backoff=1.0)
        storage.push(ScheduledTask("a", "k", 1, 0.0))
        server.kill()
        restarter = threading.Timer(0.3, server.start)
        restarter.start()
        try:
            storage.push(ScheduledTask("b", "k", 2, 0.0))  # retried until the server is back
        finally:
            restarter.join()
        assert storage.waiting() == 1  # no persistence: only the push after the restart


def test_wrong_password_is_unavailable_without_leaking_it() -> None:
    with RedisServer(extra_args=["--requirepass", "right-pw"]) as server:
        storage = RedisStorage.from_url(
            f"redis://:wrong-pw@127.0.0.1:{server.port}/0", namespace="auth", retries=1, backoff=0.01
        )
        with pytest.raises(StorageUnavailable) as raised:
            storage.waiting()
        assert "wrong-pw" not in str(raised.value) and "right-pw" not in str(raised.value)
        assert str(server.port) in str(raised.value)


def test_push_retried_after_a_lost_reply_is_stored_once() -> None:
    """The server runs the push but the reply never arrives: the retry must not fail or double it.

    ``DEBUG SLEEP`` blocks the server; the push is sent meanwhile and times out
    on the client, which closes the connection. When the server wakes up it
    still runs the command it already received (the reply goes nowhere), and
    the retry finds the identical task stored.
    """
    with RedisServer(extra_args=["--enable-debug-command", "local"]) as server:
        storage = RedisStorage.from_url(
            server.url, namespace="lost-reply", retries=3, backoff=0.6, socket_timeout=0.2
        )
        storage.push(ScheduledTask("warm-up", "w", 0, 0.0))  # the script is loaded: no NOSCRIPT below
        admin = redis.Redis.from_url(server.url)
        admin.config_resetstat()
        sleeper = block_server(admin, server.url)
        t0 = time.monotonic()
        storage.push(ScheduledTask("once", "k", {"n": 1}, 0.0))
        took = time.monotonic() - t0
        sleeper.join()
        assert took > 0.5, "the first attempt should have timed out and been retried"
        # Both attempts ran on the server: the first stored the task, the retry found it.
        assert admin.info("commandstats")["cmdstat_evalsha"]["calls"] >= 2
        assert storage.waiting() == 2
        popped = [storage.pop(1.0, 5.0).task for _ in range(3)]
        assert [t.task_id if t else None for t in popped] == ["once", "warm-up", None]  # "k" < "w"
        assert popped[0] is not None and popped[0].payload == {"n": 1}
        # A different task under the same id is still refused, retry or not.
        with pytest.raises(ValueError, match="already waiting or leased"):
            storage.push(ScheduledTask("once", "k", {"n": 2}, 0.0))
        admin.close()
        storage.close()


def test_pop_whose_reply_is_lost_comes_back_after_the_lease() -> None:
    """A pop the server ran but whose reply was lost leaves a lease nobody holds: it runs out."""
    with RedisServer(extra_args=["--enable-debug-command", "local"]) as server:
        storage = RedisStorage.from_url(
            server.url, namespace="lost-pop", retries=3, backoff=0.6, socket_timeout=0.2
        )
        assert storage.pop(0.0, 5.0).task is None  # the pop script is loaded: no NOSCRIPT below
        storage.push(ScheduledTask("a", "k", "A", 0.0))
        admin = redis.Redis.from_url(server.url)
        sleeper = block_server(admin, server.url)
        result = storage.pop(10.0, 5.0)
        sleeper.join()
        assert result.task is None  # the retry found nothing: the lost attempt leased "a"
        assert storage.status().leased == 1
        assert storage.pop(14.0, 5.0).task is None
        back = storage.pop(15.0, 5.0)  # 10.0 + 5.0: the lease ran out
        assert [t.task_id for t in back.reclaimed] == ["a"]
        assert back.task is not None and back.task.task_id == "a"
        admin.close()
        storage.close()
