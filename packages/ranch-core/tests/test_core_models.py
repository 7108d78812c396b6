"""ranch_core.models: the values Ranch hands out, and celery-ranch's names for them."""

from __future__ import annotations

from ranch_core import FairScheduler, LRUKeyMetadata, ScheduledTask


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_metadata_answers_to_the_seeds_names() -> None:
    clock = Clock()
    scheduler = FairScheduler(clock=clock)
    assert scheduler.metadata("acme").timestamp is None
    scheduler.push("acme", 1)
    clock.now = 12.5
    assert scheduler.pop() is not None
    meta = scheduler.metadata("acme")
    assert (meta.lru_key, meta.timestamp, meta.last_served) == ("acme", 12.5, 12.5)
    assert meta.to_dict()["last_served"] == 12.5


def test_expired_is_at_or_after_the_expiry() -> None:
    task = ScheduledTask(task_id="t", key="k", payload=None, enqueued_at=0.0, expires_at=5.0)
    assert not task.expired(4.999) and task.expired(5.0)
    assert not ScheduledTask(task_id="t", key="k", payload=None, enqueued_at=0.0).expired(1e12)
    assert LRUKeyMetadata(key="k").to_dict()["weight"] == 1.0
