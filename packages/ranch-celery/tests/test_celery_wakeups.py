"""Wake-up settings, bulk submit and mixed queues, on a real Redis with real workers."""

from __future__ import annotations

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_core.errors import BacklogConflict

pytestmark = [pytest.mark.redis]


class NotJSON:
    pass


# -- settings ------------------------------------------------------------------


def test_max_wakeups_defaults_to_64_and_token_ttl_is_the_sweep_interval(redis_url) -> None:
    app = make_app(redis_url, sweep=0.7)
    dispatcher = app.tasks["t.add"].lru_dispatcher
    assert dispatcher.wakeups.max_wakeups == 64
    assert dispatcher.wakeups.ttl == 0.7


def test_app_setting_bounds_the_wakeups_in_the_broker(redis_url, rec) -> None:
    app = make_app(redis_url, max_wakeups=3)
    add = app.tasks["t.add"]
    assert add.lru_dispatcher.wakeups.max_wakeups == 3
    for n in range(10):
        add.lru_delay(f"k{n}", n, n)  # no worker: each push may mint while fewer than 3 are out
    # A push mints only while fewer tokens are in flight than calls wait, and at most 3.
    assert rec.llen("celery") <= 3
    assert add.lru_dispatcher.scheduler.storage.wakeup_status().outstanding <= 3


def test_lru_task_max_wakeups_per_backlog(redis_url) -> None:
    app = Celery("mw", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.ranch_max_wakeups = 10

    @lru_task(app, name="mw.a", backlog="own", max_wakeups=5)
    def a() -> None: ...

    @lru_task(app, name="mw.b", backlog="own")
    def b() -> None: ...

    @lru_task(app, name="mw.c", backlog="other")
    def c() -> None: ...

    assert a.lru_dispatcher.wakeups.max_wakeups == 5
    assert b.lru_dispatcher is a.lru_dispatcher
    assert c.lru_dispatcher.wakeups.max_wakeups == 10


def test_conflicting_max_wakeups_for_one_backlog_raise_backlog_conflict(redis_url) -> None:
    app = Celery("mwc", broker=redis_url, backend=redis_url, set_as_current=False)

    @lru_task(app, name="mwc.a", backlog="shared", max_wakeups=5)
    def a() -> None: ...

    with pytest.raises(BacklogConflict, match=r"max_wakeups=7.*max_wakeups=5"):

        @lru_task(app, name="mwc.b", backlog="shared", max_wakeups=7)
        def b() -> None: ...


def test_conflicting_max_wakeups_on_one_queue_raise_at_first_use(redis_url) -> None:
    app = Celery("mwq", broker=redis_url, backend=redis_url, set_as_current=False)

    @lru_task(app, name="mwq.a", max_wakeups=5)
    def a() -> None: ...

    @lru_task(app, name="mwq.b", max_wakeups=6)
    def b() -> None: ...

    with pytest.raises(BacklogConflict, match="max_wakeups"):
        _ = a.lru_backlog  # resolving the backlog is the point


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("8", TypeError), (True, TypeError)],
)
def test_bad_max_wakeups_and_budget_are_refused(redis_url, value, error) -> None:
    app = Celery("bad", broker=redis_url, set_as_current=False)
    with pytest.raises(error, match="max_wakeups"):
        lru_task(app, name="bad.a", max_wakeups=value)
    with pytest.raises(error, match="max_wakeups"):
        lru_task(app, name="bad.b", config={"max_wakeups": value})
    with pytest.raises(error, match="wakeup_budget"):
        lru_task(app, name="bad.c", config={"wakeup_budget": value})


def test_budget_settings_are_read(redis_url) -> None:
    from ranch_celery.registry import RanchState

    app = make_app(redis_url, budget=4)
    app.conf.ranch_wakeup_budget_seconds = 0.2
    settings = RanchState.of(app).settings()
    assert (settings.wakeup_budget, settings.wakeup_budget_seconds) == (4, 0.2)
    defaults = RanchState.of(make_app(redis_url)).settings()
    assert (defaults.max_wakeups, defaults.wakeup_budget, defaults.wakeup_budget_seconds) == (64, 8, 0.05)


# -- bulk submit -----------------------------------------------------------------


def test_lru_delay_many_runs_every_call_once_results_in_order(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    calls = [((n, 1), None) for n in range(1_050)]
    results = add.lru_delay_many("bulk", calls)
    assert len(results) == 1_050 and len({r.id for r in results}) == 1_050
    # Two batches (1,000 + 50), at most one wake-up each, with no worker running.
    assert rec.llen("celery") == 2
    assert add.get_system_status()["backlog_size"] == 1_050
    worker = start_worker(pool="prefork", concurrency=2)
    assert [r.get(timeout=60) for r in results] == [n + 1 for n in range(1_050)]
    wait_for(lambda: add.get_system_status()["served_total"] == 1_050, 10, "every call served", worker)
    assert add.get_system_status()["backlog_size"] == 0


def test_the_threads_pool_keeps_draining_with_late_acks(redis_url, start_worker) -> None:
    # kombu < 5.7 (the newest for Python 3.9) cannot wake the event loop for an ack sent from a
    # pool thread: with the prefetch window full the worker stopped after 2 x 8 calls. The Ranch
    # bootstep keeps the loop awake there (ranch_celery.hub).
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    results = add.lru_delay_many("bulk", [((n, 1), None) for n in range(400)])
    start_worker(pool="threads", concurrency=2)
    assert [r.get(timeout=30) for r in results] == [n + 1 for n in range(400)]


def test_lru_delay_many_kwargs_and_options(redis_url, start_worker) -> None:
    app = make_app(redis_url)
    kw = app.tasks["t.kw"]
    calls = [((1,), {"b": 2}), ([3], None), ((4,), {"c": "x"})]
    results = kw.lru_delay_many("opts", calls, priority_weight=0.5, tags={"tier": "gold"})
    meta = kw.get_client_metadata("opts")
    assert meta["weight"] == 0.5 and meta["tags"] == {"tier": "gold"} and meta["pending_tasks"] == 3
    start_worker()
    assert [r.get(timeout=10) for r in results] == [[1, 2, None], [3, 0, None], [4, 0, "x"]]


def test_lru_delay_many_of_nothing_stores_nothing(redis_url, rec) -> None:
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    assert add.lru_delay_many("k", []) == []
    assert add.lru_delay_many("k", iter(())) == []
    assert add.get_system_status()["backlog_size"] == 0 and rec.llen("celery") == 0


BAD_MANY = [
    # (lru_key, calls, options, exception, message)
    ("k", 5, {}, TypeError, "calls must be an iterable"),
    ("k", "ab", {}, TypeError, "calls must be an iterable"),
    ("k", {"args": ()}, {}, TypeError, "calls must be an iterable"),
    ("k", [((1, 2), None), (1, 2, 3)], {}, TypeError, r"calls\[1\] must be an \(args, kwargs\) pair"),
    ("k", [((1, 2), None), "xy"], {}, TypeError, r"calls\[1\] must be an \(args, kwargs\) pair"),
    ("k", [((1, 2), None), ((1, 2), None), ("ab", None)], {}, TypeError, r"calls\[2\]: args must be a list"),
    ("k", [((1, 2), [1])], {}, TypeError, r"calls\[0\]: kwargs must be a mapping"),
    ("k", [((1, 2), {3: 1})], {}, TypeError, r"calls\[0\]: kwargs must be a mapping with str keys"),
    ("k", [((1, 2), None), ((NotJSON(), 2), None)], {}, TypeError, r"calls\[1\]: argument 1 \(args\[0\]\)"),
    ("k", [((1, 2), None), ((1,), {"y": {1, 2}})], {}, TypeError, r"calls\[1\]: keyword 'y' of type set"),
    ("", [((1, 2), None)], {}, ValueError, "lru_key"),
    (5, [((1, 2), None)], {}, TypeError, "lru_key"),
    ("k", [((1, 2), None)], {"priority_weight": 0}, ValueError, "priority_weight"),
    ("k", [((1, 2), None)], {"expiry": -1}, ValueError, "expiry"),
    ("k", [((1, 2), None)], {"tags": ["vip"]}, TypeError, "tags"),
]


@pytest.mark.parametrize(("key", "calls", "options", "error", "match"), BAD_MANY)
def test_bad_lru_delay_many_stores_and_publishes_nothing(redis_url, rec, key, calls, options, error, match):
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    with pytest.raises(error, match=match):
        add.lru_delay_many(key, calls, **options)
    assert add.get_system_status()["backlog_size"] == 0
    assert rec.llen("celery") == 0


def test_a_bad_call_in_a_later_batch_stores_nothing_of_the_earlier_ones(redis_url, rec) -> None:
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    calls = [((n, 1), None) for n in range(2_300)]
    calls[2_100] = ((object(), 1), None)
    with pytest.raises(TypeError, match=r"calls\[2100\]: argument 1 \(args\[0\]\) of type object"):
        add.lru_delay_many("k", calls)
    assert add.get_system_status()["backlog_size"] == 0
    assert rec.llen("celery") == 0


# -- mixed queues ------------------------------------------------------------------


@pytest.mark.slow
def test_plain_tasks_on_the_queue_finish_long_before_the_ranch_backlog(redis_url, start_worker, rec) -> None:
    # A plain message waits behind at most the wake-ups queued ahead of it, each running up to
    # the budget (8) calls: a token passed on is published behind it. The plain messages are
    # queued before the worker starts, so the bound does not depend on how fast this machine
    # publishes while the worker drains (CI measured 272 Ranch calls that way, against 8 here).
    app = make_app(redis_url)
    record, plain = app.tasks["t.record"], app.tasks["t.plain_record"]
    record.lru_delay_many("bulk", [(("mix", "bulk", n), None) for n in range(1_000)])
    tokens_ahead = rec.llen("celery")
    assert 1 <= tokens_ahead <= 64
    for n in range(50):
        plain.delay("mix", "plain", n)
    worker = start_worker("mixed", pool="prefork", concurrency=2)
    wait_for(lambda: rec.llen("order:mix") >= 1_050, 20, "every call", worker)
    order = rec.lrange("order:mix", 0, -1)
    last_plain = max(i for i, entry in enumerate(order) if entry.startswith("plain:"))
    ranch_before = sum(1 for entry in order[:last_plain] if entry.startswith("bulk:"))
    # ... plus the runs the other pool child goes on with while the last plain call is taken and
    # recorded: one on a quiet machine, more when that call's child waits for a core (18 calls
    # once under coverage in CI). Far from the 1,000 a plain call would wait behind if the tokens
    # went ahead of it, or if each Ranch call were a message of its own.
    assert ranch_before <= 8 * (tokens_ahead + 4), f"{ranch_before} Ranch calls ran first"
    assert sorted(order) == sorted([f"bulk:{n}" for n in range(1_000)] + [f"plain:{n}" for n in range(50)])


@pytest.mark.slow
def test_tokens_grow_to_the_workers_slots_beyond_max_wakeups(redis_url, start_worker, rec) -> None:
    # max_wakeups=2, but the worker runs 4 threads: it registers 4 slots at its sweep, and the
    # sweep mints tokens up to them, so 4 calls run at once.
    app = make_app(redis_url, max_wakeups=2)
    slow = app.tasks["t.slow"]
    results = [slow.lru_delay(f"key{n}", f"s{n}", 1.0) for n in range(12)]
    worker = start_worker(pool="threads", concurrency=4, env={"RANCH_TEST_MAX_WAKEUPS": "2"})
    wait_for(lambda: rec.llen("started") - rec.llen("finished") >= 4, 10, "4 calls running at once", worker)
    assert [r.get(timeout=14) for r in results] == [f"s{n}" for n in range(12)]
