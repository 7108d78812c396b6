"""Per-key controls with real ``celery worker`` processes on a real Redis (broker, results, storage).

The calls are ``t.timed`` (``max_retries=0``): each records when it started and ended, and its
retry count, in Redis. Bounds on time are at least 5x what the run needs.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Tuple

import pytest
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_core import BacklogFull

pytestmark = [pytest.mark.redis, pytest.mark.slow]

Span = Tuple[str, float, float]


def spans(rec: Any, tag: str) -> List[Span]:
    """``(key, start, end)`` of every call of ``tag`` that finished."""
    return [tuple(json.loads(item)) for item in rec.lrange(f"span:{tag}", 0, -1)]  # type: ignore[misc]


def starts(rec: Any, tag: str) -> List[Tuple[str, float, int]]:
    """``(key, start, retries)`` of every call of ``tag`` that started."""
    return [tuple(json.loads(item)) for item in rec.lrange(f"start:{tag}", 0, -1)]  # type: ignore[misc]


def max_overlap(intervals: List[Span]) -> int:
    """The most intervals running at one moment (an end before a start at the same instant)."""
    events = sorted([(start, 1) for _, start, _ in intervals] + [(end, -1) for _, _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def max_in_window(times: List[float], window: float) -> int:
    """The most of ``times`` in any closed window of ``window`` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t <= start + window) for start in times)


def test_a_concurrency_limit_holds_across_two_workers(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.set_concurrency_limit("capped", 2)
    capped = [timed.lru_delay("capped", "cap", 0.3) for _ in range(10)]
    free = [timed.lru_delay(f"free{n}", "cap", 0.3) for n in range(4)]
    first = start_worker("w1", pool="prefork", concurrency=2)
    start_worker("w2", pool="threads", concurrency=3)  # 5 slots, 2 of them for "capped" at most

    assert [r.get(timeout=30) for r in capped + free] == [0] * 14  # none used a retry
    ran = spans(rec, "cap")
    capped_spans = [span for span in ran if span[0] == "capped"]
    assert len(capped_spans) == 10
    assert max_overlap(capped_spans) == 2, capped_spans  # reached, never passed
    # Work-conserving: the free keys did not wait behind the capped flood.
    last_capped_start = max(start for _, start, _ in capped_spans)
    assert all(start < last_capped_start for key, start, _ in ran if key != "capped")
    wait_for(lambda: timed.get_system_status()["leased"] == 0, 10, "all leases acked", first)
    meta = timed.get_client_metadata("capped")
    assert meta["concurrency_limit"] == 2 and meta["running"] == 0 and meta["pending_tasks"] == 0


def test_a_rate_limit_holds_across_two_workers_with_delayed_wake_ups(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.set_rate_limit("api", "5/s", burst=2)
    results = [timed.lru_delay("api", "rate", 0) for _ in range(10)]
    # A sweep every 5 s: only the delayed wake-ups (countdown) keep the rate of one call per 200 ms.
    env = {"RANCH_TEST_SWEEP": "5"}
    first = start_worker("w1", pool="threads", concurrency=2, env=env)
    began = time.monotonic()
    second = start_worker("w2", env=env)

    assert [r.get(timeout=30) for r in results] == [0] * 10  # waiting used no retry (max_retries=0)
    assert time.monotonic() - began < 5 * (8 / 5)  # 2 at once, then 8 more at 5/s: 1.6 s
    started = [at for key, at, _ in starts(rec, "rate")]
    assert len(started) == 10
    # At most burst + rate * T starts in any window T (0.1 s of slack between the pop and the body).
    for window in (0.2, 0.5, 1.0, 2.0):
        assert max_in_window(started, window) <= 2 + 5 * (window + 0.1), (window, started)
    for worker in (first, second):
        assert "the sweep publishes" not in worker.log.read_text()  # no sweep had to step in
    assert timed.get_client_metadata("api")["rate_limit"] == "5/s"


def test_a_paused_key_waits_and_runs_once_resumed(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.pause_key("held")
    held = [timed.lru_delay("held", "pause", 0) for _ in range(3)]
    free = [timed.lru_delay("free", "pause", 0.05) for _ in range(3)]
    worker = start_worker()
    assert [r.get(timeout=20) for r in free] == [0] * 3
    # Round robin would have run a held call before the second free one.
    assert [key for key, _, _ in starts(rec, "pause")] == ["free"] * 3
    meta = timed.get_client_metadata("held")
    assert (
        meta["paused"] is True and meta["pending_tasks"] == 3 and [r.state for r in held] == ["PENDING"] * 3
    )

    resumed = time.time()
    timed.resume_key("held")
    assert [r.get(timeout=20) for r in held] == [0] * 3
    first_start = min(at for key, at, _ in starts(rec, "pause") if key == "held")
    assert first_start - resumed < 5, worker.log_tail()  # published by resume_key, not by a sweep
    assert timed.get_client_metadata("held")["paused"] is False


def test_max_backlog_refuses_and_stores_nothing_on_redis(redis_url, rec) -> None:
    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.set_max_backlog("small", 2)
    timed.lru_delay("small", "full", 0)
    timed.lru_delay("small", "full", 0)
    queued = rec.llen("celery")
    with pytest.raises(BacklogFull) as refused:
        timed.lru_delay("small", "full", 0)
    assert (refused.value.key, refused.value.limit) == ("small", 2)
    with pytest.raises(BacklogFull):
        timed.lru_delay_many("small", [(("full", 0), None)])
    timed.set_max_backlog("batch", 3)
    with pytest.raises(BacklogFull):  # all or nothing
        timed.lru_delay_many("batch", [(("full", 0), None)] * 4)
    assert timed.get_client_metadata("small")["pending_tasks"] == 2
    assert timed.get_client_metadata("batch")["pending_tasks"] == 0
    assert rec.llen("celery") == queued  # no wake-up published for a refused call
    # The refused call's result channel is not left subscribed (a producer refused often).
    subscribed = app.backend.result_consumer.subscribed_to
    first = timed.lru_apply_async("spare", ("full", 0), task_id="waiting-call")
    assert app.backend.get_key_for_task(first.id) in subscribed
    with pytest.raises(BacklogFull):
        timed.lru_apply_async("small", ("full", 0), task_id="refused-call")
    assert app.backend.get_key_for_task("refused-call") not in subscribed
    with pytest.raises(ValueError, match="waiting-call"):  # DuplicateTask: the waiting call keeps it
        timed.lru_apply_async("spare", ("full", 0), task_id="waiting-call")
    assert app.backend.get_key_for_task(first.id) in subscribed
    assert len(timed.lru_delay_many("batch", [(("full", 0), None)] * 3)) == 3


def test_purge_and_revoke_call_store_revoked_and_never_run(redis_url, start_worker, rec) -> None:
    from celery.exceptions import TaskRevokedError

    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.pause_key("junk")
    junk = [timed.lru_delay("junk", "purge", 0) for _ in range(5)]
    start_worker()
    assert timed.revoke_call(junk[0].id) is True
    assert timed.revoke_call(junk[0].id) is False
    assert timed.purge_key("junk") == 4
    assert [r.state for r in junk] == ["REVOKED"] * 5
    meta: Dict[str, Any] = app.backend.get_task_meta(junk[1].id)
    assert str(meta["result"]) == "purged"
    assert str(app.backend.get_task_meta(junk[0].id)["result"]) == "revoked"
    with pytest.raises(TaskRevokedError):
        junk[2].get(timeout=5)

    timed.resume_key("junk")
    marker = timed.lru_delay("junk", "purge", 0)
    assert marker.get(timeout=20) == 0
    assert len(starts(rec, "purge")) == 1  # only the marker ran
    assert timed.get_client_metadata("junk")["pending_tasks"] == 0


@pytest.mark.parametrize("pool", ["prefork", "solo", "threads"])
def test_celerys_revoke_of_a_waiting_call(redis_url, start_worker, rec, pool: str) -> None:
    app = make_app(redis_url)
    timed = app.tasks["t.timed"]
    timed.pause_key("k")
    doomed = timed.lru_delay("k", "revoke", 0)
    also = timed.lru_delay("k", "revoke", 0)
    kept = timed.lru_delay("k", "revoke", 0)
    worker = start_worker(pool=pool, concurrency=1 if pool == "solo" else 2)
    # A revoke is a broadcast, lost by a worker not yet subscribed to them (ready comes first):
    # a ping answered says it is.
    wait_for(lambda: app.control.ping([worker.name], timeout=1), 10, "the worker to answer a ping", worker)

    doomed.revoke()  # the lru_task's result removes it here, then broadcasts
    # Any other revoke is a broadcast: the worker's main process removes the call from the backlog.
    app.control.revoke(also.id)
    wait_for(lambda: timed.get_client_metadata("k")["pending_tasks"] == 1, 10, "two calls removed", worker)
    assert doomed.state == "REVOKED" and also.state == "REVOKED"

    if pool != "prefork":
        # Revoked before it was stored: the worker skips it when it takes it (as Celery's
        # Request). A prefork pool process knows only the ids revoked before it was forked.
        early_id = f"early-{pool}"
        app.control.revoke(early_id)
        wait_for(
            # With a destination the inspect returns on the worker's reply, not after its timeout.
            lambda: (
                early_id
                in (app.control.inspect([worker.name], timeout=1).revoked() or {}).get(worker.name, [])
            ),
            10,
            "the revoke to reach the worker",
            worker,
        )
        early = timed.lru_apply_async("k", ("revoke", 0), task_id=early_id)
    timed.resume_key("k")
    assert kept.get(timeout=20) == 0
    wait_for(lambda: timed.get_system_status()["leased"] == 0, 10, "every lease acked", worker)
    # `early` (stored after `kept`) may still wait for its take when `kept`'s lease ends.
    wait_for(lambda: timed.get_client_metadata("k")["pending_tasks"] == 0, 10, "the backlog empty", worker)
    if pool != "prefork":
        wait_for(lambda: early.state == "REVOKED", 10, "the skipped call REVOKED", worker)
        assert "Discarding revoked task" in worker.log.read_text()
    assert len(starts(rec, "revoke")) == 1  # only `kept` ran


def test_lru_task_defaults_apply_to_keys_without_their_own(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url, default_concurrency_limit=1)
    defaulted = app.tasks["t.defaulted"]
    defaulted.set_concurrency_limit("wide", 3)  # its own limit wins over the default
    results = [defaulted.lru_delay(key, "defaults", 0.2) for key in ("a", "b", "wide") for _ in range(3)]
    start_worker(pool="threads", concurrency=6, env={"RANCH_TEST_DEFAULT_CONCURRENCY": "1"})
    assert [r.get(timeout=30) for r in results] == [0] * 9
    ran = spans(rec, "defaults")
    by_key = {key: [span for span in ran if span[0] == key] for key in ("a", "b", "wide")}
    assert max_overlap(by_key["a"]) == 1 and max_overlap(by_key["b"]) == 1
    assert max_overlap(by_key["a"] + by_key["b"]) == 2  # each at its cap, side by side
    assert max_overlap(by_key["wide"]) > 1
    assert defaulted.get_client_metadata("someone")["concurrency_limit"] == 1
    assert defaulted.get_client_metadata("wide")["concurrency_limit"] == 3


def test_a_sigkilled_workers_place_under_the_cap_returns_when_its_lease_is_reclaimed(
    redis_url, start_worker, rec
) -> None:
    # Cap 1: while the dead worker's lease stands, the key is at its cap and nobody else may run
    # it; the sweep reclaims the lease (2 s, renewed every 0.3 s until the kill), the place under
    # the cap returns, the killed call runs again and the others follow, one at a time.
    import signal

    app = make_app(redis_url, lease=2.0)
    timed = app.tasks["t.timed"]
    timed.set_concurrency_limit("capped", 1)
    results = [timed.lru_delay("capped", "kill", 1.0) for _ in range(3)]
    env = {"RANCH_TEST_LEASE": "2", "RANCH_TEST_SWEEP": "0.3"}
    victim = start_worker("victim", env=env)
    wait_for(lambda: len(starts(rec, "kill")) == 1, 20, "the first call to start", victim)
    victim.kill(signal.SIGKILL)
    killed_at = time.time()
    victim.process.wait(10)
    assert timed.get_client_metadata("capped")["running"] == 1  # the dead worker still holds it

    rescuer = start_worker("rescuer", pool="threads", concurrency=3, env=env)
    assert [r.get(timeout=30) for r in results] == [0, 0, 0]
    began = sorted(start for _, start, _ in starts(rec, "kill"))
    assert len(began) == 4  # the killed call started twice, the others once
    assert began[1] >= killed_at + 1.0, "a call of the key started before the dead worker's lease ran out"
    assert max_overlap(spans(rec, "kill")) == 1  # the rescuer's 3 threads kept to the cap
    wait_for(lambda: timed.get_system_status()["leased"] == 0, 10, "all leases acked", rescuer)
    assert timed.get_client_metadata("capped")["running"] == 0
