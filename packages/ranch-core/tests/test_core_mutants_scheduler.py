"""``FairScheduler`` rules the other tests left unasserted (tests from the mutation run).

Each public entry point names the bad argument in its message (the rule of
``ranch_core.validation``); counts leave out every due call, however many;
a failing weight function warns at most once a minute, saying how many
warnings it held back.
"""

from __future__ import annotations

import logging
import threading
import time
import types
import uuid
from typing import Any, Callable, List, Optional

import pytest
from ranch_core import FairScheduler, InMemoryStorage, LRUKeyMetadata, ScheduledTask
from ranch_core import scheduler as scheduler_module
from ranch_core.errors import CorruptTask
from ranch_core.models import WakeupPolicy
from ranch_core.protocols import EXPIRE_ON_READ, MAX_BATCH
from ranch_core.scheduler import WARNING_INTERVAL


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> FairScheduler:
    return FairScheduler(clock=Clock())


ENTRY_POINTS: List[Any] = [
    # (call, error, the start of the message: the argument's name first)
    (lambda s: s.push("", 1), ValueError, "key must not be empty"),
    (lambda s: s.push("k", 1, weight="2"), TypeError, "weight must be a number"),
    (lambda s: s.push("k", 1, expiry=-1), ValueError, "expiry must be >= 0"),
    (lambda s: s.push("k", 1, task_id=""), ValueError, "task_id must not be empty"),
    (lambda s: s.push_many("k", [1], task_ids=[""]), ValueError, "task_id must not be empty"),
    (lambda s: s.pop(timeout=-1), ValueError, "timeout must be >= 0 seconds or None, got -1"),
    (lambda s: s.pop(timeout="1"), TypeError, "timeout must be a number"),
    (lambda s: s.store("k", [1, 2], task_ids=["a", 2]), TypeError, "task_id must be a str"),
    (lambda s: s.push("k", 1, tags={"": "x"}), ValueError, "tag name must not be empty"),
    (lambda s: s.push("k", 1, tags={"plan": 1}), TypeError, "tag 'plan' must be a str"),
    (lambda s: s.remove(7, "t"), TypeError, "key must be a str"),
    (lambda s: s.remove("k", ""), ValueError, "task_id must not be empty"),
    (lambda s: s.revoke_call(""), ValueError, "task_id must not be empty"),
    (lambda s: s.set_max_backlog("k", -1), ValueError, "limit must be between 0 and"),
    (lambda s: s.push("k", 1, delay=-1), ValueError, "delay must be >= 0 seconds"),
    (lambda s: s.set_weight("k", 0), ValueError, "weight must be between"),
    (lambda s: s.set_weight(None, 1), TypeError, "key must be a str"),
    (lambda s: s.set_custom_data("k", "", 1), ValueError, "name must not be empty"),
    (lambda s: s.set_custom_data("", "n", 1), ValueError, "key must not be empty"),
    (lambda s: s.set_custom_data("k", "n", float("nan")), TypeError, "custom data 'n' cannot be encoded"),
    (lambda s: s.add_tag("k", "", "v"), ValueError, "tag name must not be empty"),
    (lambda s: s.add_tag("k", "plan", 3), TypeError, "tag value must be a str"),
    (lambda s: s.add_tag(b"k", "plan", "v"), TypeError, "key must be a str"),
    (lambda s: s.keys_with_tag(""), ValueError, "tag name must not be empty"),
    (lambda s: s.keys_with_tag("plan", 3), TypeError, "tag value must be a str"),
    (lambda s: s.metadata(""), ValueError, "key must not be empty"),
    (lambda s: s.expire(0), ValueError, "limit must be >= 1"),
    (lambda s: s.repair(1.0), TypeError, "limit must be an int"),
    (lambda s: FairScheduler(lease_seconds=-1), ValueError, "lease_seconds must be greater than 0"),
    (lambda s: FairScheduler(weight_function=3), TypeError, "weight_function must be callable"),
]


@pytest.mark.parametrize(("call", "error", "message"), ENTRY_POINTS)
def test_each_entry_point_names_the_bad_argument(
    call: Callable[[FairScheduler], Any], error: type, message: str
) -> None:
    scheduler = make()
    with pytest.raises(error, match=f"^{message}"):
        call(scheduler)
    assert len(scheduler) == 0 and scheduler.keys_with_tag("plan") == []
    assert scheduler.metadata("k").custom_data == {} and scheduler.metadata("k").weight == 1.0


@pytest.mark.parametrize(
    "read",
    [len, lambda s: s.metadata("k").pending_tasks, lambda s: s.status().backlog_size],
    ids=["len", "metadata", "status"],
)
def test_counts_leave_out_more_due_calls_than_one_read_drops(read: Callable[[FairScheduler], int]) -> None:
    clock = Clock()
    dropped: List[str] = []
    scheduler = FairScheduler(clock=clock, on_expired=lambda task: dropped.append(task.task_id))
    due = EXPIRE_ON_READ + 30
    for n in range(due):
        scheduler.push("k", n, expiry=1.0, task_id=f"t{n:03}")
    scheduler.push("k", "stays", task_id="stays")
    clock.now += 5.0
    assert read(scheduler) == 1  # drops EXPIRE_ON_READ, leaves the other 30 out of the count
    assert dropped == [f"t{n:03}" for n in range(EXPIRE_ON_READ)]  # by expiry, then id
    assert scheduler.status().expired_total == due
    assert dropped == [f"t{n:03}" for n in range(due)]
    task = scheduler.pop()
    assert task is not None and task.task_id == "stays"


def test_one_status_read_drops_due_calls_and_reports_them() -> None:
    clock = Clock()
    dropped: List[str] = []
    scheduler = FairScheduler(clock=clock, on_expired=lambda task: dropped.append(task.task_id))
    scheduler.push("k", 1, expiry=1.0, task_id="old")
    clock.now += 2.0
    assert scheduler.status().expired_total == 1
    assert dropped == ["old"]


def test_requeue_enqueues_the_retry_now() -> None:
    clock = Clock()
    scheduler = FairScheduler(clock=clock)
    scheduler.push("k", 1, task_id="t", expiry=1000.0)
    task = scheduler.pop()
    assert task is not None and task.enqueued_at == 100.0
    clock.now = 150.0
    assert scheduler.requeue(task, 2)
    again = scheduler.pop()
    assert again is not None
    assert (again.payload, again.enqueued_at, again.expires_at) == (2, 150.0, 1100.0)


class RepairableMemory(InMemoryStorage):
    """The in-memory storage with a repair step (a shared storage has one): records each limit."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: List[int] = []

    def repair(self, limit: int) -> List[CorruptTask]:
        self.limits.append(limit)
        return []


def test_repair_passes_its_limit_to_a_repairable_storage() -> None:
    storage = RepairableMemory()
    scheduler = FairScheduler(storage)
    assert scheduler.repair(7) == [] and scheduler.repair() == []
    assert storage.limits == [7, 100]


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_weight_function_warnings_once_per_interval_with_the_count_held_back(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMonotonic()
    monkeypatch.setattr(scheduler_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    results: List[Optional[float]] = []

    def weight(key: str, meta: LRUKeyMetadata) -> float:
        value = results.pop(0)
        if value is None:
            raise RuntimeError("boom")
        return value

    scheduler = FairScheduler(weight_function=weight, clock=Clock())
    for n in range(8):
        scheduler.push("a", n)

    def pop_with(value: Optional[float]) -> List[str]:
        results.append(value)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ranch_core"):
            assert scheduler.pop() is not None
        return [record.getMessage() for record in caplog.records]

    assert pop_with(None) == [
        "ranch: weight_function failed for key 'a': RuntimeError('boom'); using the stored weight"
    ]
    assert pop_with(None) == []
    assert pop_with(0.0) == []  # out of range: held back too
    fake.now += WARNING_INTERVAL - 0.5
    assert pop_with(None) == []
    fake.now += 0.5  # exactly one interval after the last warning: warns again
    (message,) = pop_with(2000.0)
    assert message.startswith(
        "ranch: weight_function failed for key 'a': ValueError('weight_function result "
    )
    assert message.endswith("; using the stored weight (3 similar warnings suppressed)")
    fake.now += WARNING_INTERVAL
    assert pop_with(None) == [
        "ranch: weight_function failed for key 'a': RuntimeError('boom'); using the stored weight"
    ]  # nothing was held back since the last warning


def test_metadata_and_len_of_a_fresh_key() -> None:
    scheduler = make()
    assert scheduler.metadata("nobody") == LRUKeyMetadata(key="nobody")
    storage = scheduler.storage
    assert isinstance(storage, InMemoryStorage)
    storage.push(ScheduledTask("x", "k", 1, 0.0, 50.0))  # already due at the clock's 100
    assert len(scheduler) == 0 and storage.waiting() == 0


def test_expired_and_reclaimed_calls_are_logged_with_id_and_key(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    scheduler = FairScheduler(clock=clock, lease_seconds=10.0)
    scheduler.push("k", 1, task_id="leased")
    assert scheduler.pop() is not None
    scheduler.push("k", 2, task_id="old", expiry=1.0)
    clock.now += 20.0
    with caplog.at_level(logging.INFO, logger="ranch_core"):
        assert scheduler.reclaim() != [] and scheduler.expire() != []
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "ranch: lease of task leased (key 'k') ran out; put back"),
        ("INFO", "ranch: dropped expired task old of key 'k'"),
    ]


def test_random_task_ids_are_uuid4_with_every_other_bit_random() -> None:
    ids = [uuid.UUID(hex=FairScheduler().push("k", 1)) for _ in range(200)]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in ids)
    fixed = {48, 49, 50, 51, 64, 65}  # the version nibble and the variant bits, counted from the top
    # Each random bit, read down the 200 ids, is a 200-bit column: none constant, no two equal
    # (a bit copied from another). Each fails by chance with probability about 2**-199.
    columns = {
        bit: sum(((u.int >> (127 - bit)) & 1) << row for row, u in enumerate(ids)) for bit in range(128)
    }
    random_columns = [column for bit, column in columns.items() if bit not in fixed]
    assert all(0 < column < 2**200 - 1 for column in random_columns)
    assert len(set(random_columns)) == len(random_columns)


def test_default_lease_is_five_minutes() -> None:
    assert FairScheduler().lease_seconds == 300.0
    assert FairScheduler(lease_seconds=0.5).lease_seconds == 0.5


def test_store_names_a_task_ids_count_mismatch() -> None:
    scheduler = make()
    with pytest.raises(ValueError, match=r"^task_ids has 1 ids for 2 payloads"):
        scheduler.store("k", [1, 2], task_ids=["a"])
    assert len(scheduler) == 0


def test_store_in_two_batches_returns_the_tokens_of_both() -> None:
    scheduler = make()
    stored = scheduler.store("k", range(MAX_BATCH + 5), wakeups=WakeupPolicy(max_wakeups=8))
    assert len(stored.task_ids) == MAX_BATCH + 5
    assert len(stored.wakeups) == 2  # one per storage step


def test_pop_with_a_timeout_returns_the_call_it_found_at_once() -> None:
    """A call that waits is leased and returned: the wait is only for when none does."""
    scheduler = make()
    scheduler.push("k", "first")
    scheduler.push("k", "second")
    popped = scheduler.pop(timeout=30)
    assert popped is not None and popped.payload == "first"
    assert scheduler.status().leased == 1


@pytest.mark.parametrize("timeout", [1, None])
def test_pop_with_a_timeout_of_one_second_or_none_waits_for_a_push(timeout: Optional[float]) -> None:
    scheduler = make()
    storage = scheduler.storage
    assert isinstance(storage, InMemoryStorage)

    def push_once_asleep() -> None:
        deadline = time.monotonic() + 10.0
        while not storage._sleepers and time.monotonic() < deadline:
            time.sleep(0.001)  # the pop is not asleep yet
        scheduler.push("k", "late")

    pusher = threading.Thread(target=push_once_asleep)
    pusher.start()
    popped = scheduler.pop(timeout=timeout)
    pusher.join()
    assert popped is not None and popped.payload == "late"
