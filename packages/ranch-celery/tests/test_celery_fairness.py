"""Fairness with one solo worker process on a real Redis: a flood no longer delays the others."""

from __future__ import annotations

import pytest
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = [f"user{n:02d}" for n in range(10)]


def test_ten_quiet_keys_run_within_the_first_twelve_executions(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    record, plain = app.tasks["t.record"], app.tasks["t.plain_record"]
    # The same workload twice, sent before the worker starts: plain .delay, then lru_delay.
    for n in range(500):
        plain.delay("plain", "bulk", n)
    for key in KEYS:
        plain.delay("plain", key, 0)
    for n in range(500):
        record.lru_delay("bulk", "fair", "bulk", n)
    for key in KEYS:
        record.lru_delay(key, "fair", key, 0)

    worker = start_worker()
    wait_for(lambda: rec.llen("order:fair") == 510, 90, "510 fair executions", worker)
    plain_order = rec.lrange("order:plain", 0, -1)
    fair_order = rec.lrange("order:fair", 0, -1)

    # Plain Celery: FIFO, the ten quiet keys run last.
    assert [plain_order.index(f"{key}:0") for key in KEYS] == list(range(500, 510))
    # Ranch: each of the ten within the first 12 executions.
    positions = [fair_order.index(f"{key}:0") for key in KEYS]
    assert max(positions) < 12, positions
    # Within a key, submission order is kept.
    bulk = [int(item.split(":")[1]) for item in fair_order if item.startswith("bulk:")]
    assert bulk == list(range(500))
    assert len(set(fair_order)) == 510


def test_weighted_shares_hold(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    record = app.tasks["t.record"]
    # Weight 0.5 = served twice as often as weight 1.0.
    for n in range(90):
        record.lru_delay("heavy", "w", "heavy", n, priority_weight=0.5)
        record.lru_delay("light", "w", "light", n)
    assert record.get_client_metadata("heavy")["weight"] == 0.5
    worker = start_worker()
    wait_for(lambda: rec.llen("order:w") == 180, 60, "180 executions", worker)
    order = [item.split(":")[0] for item in rec.lrange("order:w", 0, -1)]
    heavy = light = 0
    # While both keys have work (the first 120 dispatches: 80 heavy, 40 light),
    # weighted service never differs by more than w_heavy + w_light.
    for key in order[:120]:
        heavy += key == "heavy"
        light += key == "light"
        assert abs(heavy * 0.5 - light * 1.0) <= 1.5, (heavy, light)
    assert (heavy, light) == (80, 40)


def test_weight_function_sets_the_cost_per_task(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    tiered = app.tasks["t.tiered"]
    # t.tiered's weight function: tier "gold" costs 0.25 per call, everyone else 1.0.
    tiered.set_custom_data("goldie", "tier", "gold")
    assert tiered.get_custom_data("goldie") == {"tier": "gold"}
    assert tiered.get_custom_data("goldie", "tier") == "gold"
    for n in range(60):
        tiered.lru_delay("goldie", "wf", "goldie", n)
        tiered.lru_delay("freddie", "wf", "freddie", n)
    worker = start_worker()
    wait_for(lambda: rec.llen("order:wf") == 120, 60, "120 executions", worker)
    order = [item.split(":")[0] for item in rec.lrange("order:wf", 0, -1)]
    first = order[:50]
    # 4:1 while both wait (the first serve of each key is charged at the stored weight 1.0).
    assert 38 <= first.count("goldie") <= 41, first.count("goldie")
    assert tiered.get_client_metadata("goldie")["served_total"] == 60
