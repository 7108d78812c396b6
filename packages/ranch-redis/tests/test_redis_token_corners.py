"""RedisStorage's token and batch corners on a real redis-server, beside the in-memory storage's answers."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from ranch_core import InMemoryStorage
from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import MAX_BATCH, Storage
from ranch_redis import RedisStorage

pytestmark = pytest.mark.redis


def task(task_id: str, key: str = "k") -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, 0.0)


@pytest.fixture(params=["redis", "memory"])
def storage(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Storage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    redis_storage = RedisStorage.from_url(redis_url, namespace=f"corners-{uuid.uuid4().hex}")
    yield redis_storage
    redis_storage.close()


def test_push_many_refuses_a_bad_batch_before_writing(storage: Storage) -> None:
    with pytest.raises(ValueError, match=f"^push_many takes at most {MAX_BATCH} tasks"):
        storage.push_many([task(f"t{n}") for n in range(MAX_BATCH + 1)])
    with pytest.raises(ValueError, match=r"^push_many takes tasks of one key"):
        storage.push_many([task("a", "k1"), task("b", "k2")])
    with pytest.raises(DuplicateTask, match=r"^push_many names one task_id twice"):
        storage.push_many([task("a"), task("a")])
    assert storage.push_many([]) == []
    assert storage.waiting() == 0


def test_pop_with_a_token_needs_a_policy(storage: Storage) -> None:
    with pytest.raises(ValueError, match=r"^pop with a token needs wakeups \(a WakeupPolicy\)"):
        storage.pop(0.0, 10.0, token="t")


def test_finish_checks_the_requeued_id_and_reports_the_lease(storage: Storage) -> None:
    storage.push(task("a"))
    popped = storage.pop(0.0, 10.0).task
    assert popped is not None
    with pytest.raises(ValueError, match=r"^finish: requeue\.task_id must be task_id"):
        storage.finish("a", 1.0, requeue=task("b"))
    assert storage.finish("a", 1.0).done is True
    assert storage.finish("a", 1.0).done is False


def test_release_token_passes_a_kept_token_on_while_calls_wait(storage: Storage) -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    tokens = storage.push(task("a"), wakeups=policy) + storage.push(task("b"), wakeups=policy)
    assert len(tokens) == 2
    popped = storage.pop(0.0, 50.0, token=tokens[0], wakeups=policy).task
    assert popped is not None
    assert storage.finish(popped.task_id, 1.0, token=tokens[0], wakeups=policy, keep_token=True).kept
    assert storage.pop(1.0, 50.0, token=tokens[1], wakeups=policy).task is not None  # the other takes "b"
    storage.push(task("c"))  # waits with no token in flight for it
    assert storage.release_token(tokens[0], 2.0, policy) == [tokens[0]]  # passed on: publish it
    assert storage.release_token(tokens[0], 2.0, policy) == []  # not held any more
