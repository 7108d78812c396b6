"""Wake-up liveness with real workers: after each fault, every call runs exactly once or is reported.

Each test uses a short lease (2 s) and sweep (0.3 s, also the token ttl):
a SIGKILLed worker (token taken but the call not started, mid-call, between
a finish and its re-publish), a purged broker queue, a Redis restart with
AOF, a publish that fails at the producer, an expired call holding the only
token.
"""

from __future__ import annotations

import signal
import time
from typing import Any, Dict, List

import pytest
import redis
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_redis.testing import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FAST = {"RANCH_TEST_LEASE": "2", "RANCH_TEST_SWEEP": "0.3"}


def _env(**extra: str) -> Dict[str, str]:
    return {**FAST, **extra}


def _kill(worker: Any) -> None:
    worker.kill(signal.SIGKILL)
    worker.process.wait(10)


def _assert_each_finished_once(rec: Any, tokens: List[str], results: List[Any]) -> None:
    assert [r.get(timeout=10) for r in results] == tokens
    finished = rec.lrange("finished", 0, -1)
    assert sorted(finished) == sorted(tokens)  # each exactly once


def _wakeups(task: Any) -> Any:
    return task.lru_dispatcher.scheduler.storage.wakeup_status()


@pytest.mark.parametrize("pause", ["prerun", "running"])
def test_sigkill_with_the_token_taken_runs_every_call_once(redis_url, start_worker, rec, pause) -> None:
    # prerun: the token is taken and the call leased, its body not started; running: mid-call.
    app = make_app(redis_url, lease=2.0, sweep=0.3)
    phase = app.tasks["t.phase"]
    tokens = [f"c{n}" for n in range(5)]
    results = [phase.lru_delay(f"key{n}", token) for n, token in enumerate(tokens)]
    rec.set(f"pause:{pause}", 1)
    victim = start_worker("victim", env=_env())
    wait_for(lambda: rec.llen("phase") >= 1, 10, f"a call to reach {pause}", victim)
    _kill(victim)
    assert rec.lrange("finished", 0, -1) == []
    rec.delete(f"pause:{pause}")
    rescuer = start_worker("rescuer", env=_env())
    wait_for(lambda: rec.llen("finished") >= 5, 12, "every call to finish", rescuer)
    _assert_each_finished_once(rec, tokens, results)
    wait_for(lambda: phase.get_system_status()["leased"] == 0, 5, "no lease left", rescuer)
    assert phase.get_system_status()["backlog_size"] == 0


def test_sigkill_between_finish_and_republish_runs_every_call_once(redis_url, start_worker, rec) -> None:
    # One token (max_wakeups=1) and a budget of one call: the first call's finish passes the
    # token on (it is in flight in the storage), and the worker dies before publishing it.
    app = make_app(redis_url, lease=2.0, sweep=0.3, max_wakeups=1, budget=1)
    phase = app.tasks["t.phase"]
    tokens = [f"c{n}" for n in range(5)]
    results = [phase.lru_delay(f"key{n}", token) for n, token in enumerate(tokens)]
    assert _wakeups(phase).outstanding == 1
    one = _env(RANCH_TEST_MAX_WAKEUPS="1", RANCH_TEST_BUDGET="1")
    victim = start_worker("victim", env={**one, "RANCH_TEST_STALL_PUBLISH": "1"})
    wait_for(lambda: "publish" in rec.lrange("phase", 0, -1), 10, "the re-publish after a call", victim)
    _kill(victim)
    assert rec.lrange("finished", 0, -1) == ["c0"]
    assert _wakeups(phase).in_flight == 1  # passed on, never published
    rescuer = start_worker("rescuer", env=one)
    wait_for(lambda: rec.llen("finished") >= 5, 12, "every call to finish", rescuer)
    _assert_each_finished_once(rec, tokens, results)


def test_purged_broker_queue_every_call_still_runs(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url, lease=2.0, sweep=0.3)
    mark = app.tasks["t.mark"]
    tokens = [f"p{n}" for n in range(20)]
    results = [mark.lru_delay(f"key{n % 4}", token) for n, token in enumerate(tokens)]
    assert rec.llen("celery") >= 1
    app.control.purge()
    assert rec.llen("celery") == 0  # every wake-up is gone; the calls wait in the storage
    worker = start_worker(env=_env())
    wait_for(lambda: rec.llen("done") >= 20, 12, "every call to run", worker)
    assert [r.get(timeout=10) for r in results] == tokens
    assert sorted(rec.lrange("done", 0, -1)) == sorted(tokens)


def test_redis_restart_with_aof_every_call_still_runs(start_worker) -> None:
    server = RedisServer(extra_args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        app = make_app(server.url, lease=2.0, sweep=0.3)
        mark = app.tasks["t.mark"]
        tokens = [f"a{n}" for n in range(20)]
        results = [mark.lru_delay(f"key{n % 4}", token) for n, token in enumerate(tokens)]
        mark.lru_dispatcher.scheduler.storage.close()
        server.stop()  # calls wait in the storage, wake-ups in the broker: both on this Redis
        server.start()
        rec = redis.Redis.from_url(server.url, decode_responses=True)
        assert mark.get_system_status()["backlog_size"] == 20  # the AOF brought the calls back
        worker = start_worker(env=_env(RANCH_TEST_REDIS_URL=server.url), wait=False)
        wait_for(lambda: rec.llen("done") >= 20, 14, "every call to run", worker)
        # Read by an app connected after the restart: Celery 5.6's result consumer (Python 3.9)
        # logs that "the Celery application must be restarted" and answers 20 s late.
        reader = make_app(server.url, lease=2.0, sweep=0.3)
        assert [reader.AsyncResult(r.id).get(timeout=10) for r in results] == tokens
        assert sorted(rec.lrange("done", 0, -1)) == sorted(tokens)
        reader.close()
        worker.stop()
        rec.close()
    finally:
        server.close()


def test_failed_publish_leaves_the_call_stored_and_a_sweep_publishes_it(
    redis_url, start_worker, rec, caplog
) -> None:
    # The producer's broker is unreachable while the storage (and results) are up. Its
    # connection retries (kombu's: 2 s apart by default) are made a tenth of a second apart.
    app = make_app(redis_url, lease=2.0, sweep=0.3, storage_url=redis_url)
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app.conf.task_publish_retry = False
    retries = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0}
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, **retries}
    mark = app.tasks["t.mark"]
    with caplog.at_level("WARNING", logger="ranch_core.dispatch"):
        result = mark.lru_delay("key", "f0")
    assert "could not publish wake-up" in caplog.text
    assert mark.get_system_status()["backlog_size"] == 1
    assert _wakeups(mark).in_flight == 1  # the token waits for its deadline
    assert rec.llen("celery") == 0  # nothing reached the real broker
    worker = start_worker(env=_env())
    wait_for(lambda: rec.llen("done") >= 1, 12, "the sweep's replacement wake-up to run the call", worker)
    assert result.get(timeout=10) == "f0"
    assert rec.lrange("done", 0, -1) == ["f0"]
    assert "the sweep publishes 1 wake-ups" in worker.log.read_text()


def test_an_expired_call_does_not_strand_the_only_token(redis_url, start_worker, rec) -> None:
    from celery.exceptions import TaskRevokedError

    app = make_app(redis_url, lease=2.0, sweep=0.3, max_wakeups=1)
    mark = app.tasks["t.mark"]
    doomed = mark.lru_delay("doomed", "never", expiry=0.2)  # takes the backlog's one token
    results = [mark.lru_delay(f"key{n}", f"e{n}") for n in range(4)]
    assert _wakeups(mark).outstanding == 1
    time.sleep(0.3)  # the expiry is a point in time, not an event
    worker = start_worker(env=_env(RANCH_TEST_MAX_WAKEUPS="1"))
    wait_for(lambda: rec.llen("done") >= 4, 12, "the other calls to run", worker)
    assert [r.get(timeout=10) for r in results] == [f"e{n}" for n in range(4)]
    with pytest.raises(TaskRevokedError):
        doomed.get(timeout=10)
    assert doomed.state == "REVOKED"
    assert "never" not in rec.lrange("done", 0, -1)
