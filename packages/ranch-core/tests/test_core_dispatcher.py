"""FairDispatcher, KeyManagement and LeaseKeeper: the adapter-facing half of the core."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Dict, List

import pytest
from ranch_core import FairScheduler, InMemoryStorage, ScheduledTask
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher, RetryOutcome, fleet_max_wakeups
from ranch_core.errors import BacklogFull, StorageUnavailable
from ranch_core.leases import LeaseKeeper
from ranch_core.management import KeyManagement


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Queue:
    """Holds wake-up tokens in order; can be told to fail like a broker that is down."""

    def __init__(self) -> None:
        self.messages = 0
        self.tokens: List[str] = []
        self.fail = False

    def wake(self, token: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.messages += 1
        self.tokens.append(token)

    def next(self) -> str:
        """The oldest wake-up's token (a worker receives it)."""
        return self.tokens.pop(0)


class Managed(KeyManagement):
    """The management API over one dispatcher, as an adapter's task class has it."""

    def __init__(self, dispatcher: FairDispatcher) -> None:
        self.dispatcher = dispatcher

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.dispatcher

    def _fair_backlog(self) -> str:
        return "b"


def make(**options: Any) -> tuple[FairDispatcher, Queue, Clock]:
    clock, queue = Clock(), Queue()
    scheduler = FairScheduler(clock=clock, lease_seconds=10, **options)
    return FairDispatcher(scheduler, queue.wake), queue, clock


def test_submit_stores_then_wakes_once_per_call() -> None:
    dispatcher, queue, _ = make()
    ids = [dispatcher.submit("tenant", Call(args=[n])) for n in range(3)]
    assert queue.messages == 3 and len(dispatcher.scheduler) == 3
    claimed = dispatcher.take()
    assert claimed is not None and claimed.task_id == ids[0] and claimed.call.args == [0]


@pytest.mark.parametrize(
    ("key", "args", "options", "error"),
    [
        ("", [1], {}, ValueError),
        (None, [1], {}, TypeError),
        ("k", [object()], {}, TypeError),
        ("k", [math.inf], {}, TypeError),
        ("k", [1], {"priority_weight": 0}, ValueError),
        ("k", [1], {"priority_weight": -1}, ValueError),
        ("k", [1], {"priority_weight": math.nan}, ValueError),
        ("k", [1], {"expiry": -1}, ValueError),
        ("k", [1], {"tags": ["plan"]}, TypeError),
        ("k", [1], {"tags": {"": "x"}}, ValueError),
        ("k", [1], {"tags": {"plan": 3}}, TypeError),
    ],
)
def test_bad_submit_stores_nothing_and_publishes_nothing(
    key: Any, args: List[Any], options: Dict[str, Any], error: type
) -> None:
    dispatcher, queue, _ = make()
    with pytest.raises(error):
        dispatcher.submit(key, Call(args=args), **options)
    assert queue.messages == 0
    assert Managed(dispatcher).get_system_status()["backlog_size"] == 0
    assert Managed(dispatcher).get_tagged_clients("plan") == []
    assert Managed(dispatcher).get_client_metadata("k")["weight"] == 1.0


def test_failed_wake_up_leaves_the_call_stored_and_the_sweep_replaces_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher, queue, clock = make()
    queue.fail = True
    task_id = dispatcher.submit("k", Call(args=[1]))  # returns normally: the call runs
    assert "could not publish wake-up" in caplog.text
    assert len(dispatcher.scheduler) == 1 and queue.tokens == []
    queue.fail = False
    dispatcher.sweep()
    assert queue.tokens == []  # the lost token is still within its ttl
    clock.now += dispatcher.wakeups.ttl
    dispatcher.sweep()
    assert len(queue.tokens) == 1
    claimed = dispatcher.take(queue.next())
    assert claimed is not None and claimed.task_id == task_id


def test_corrupt_calls_are_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, _, _ = make()
    dispatcher.scheduler.push("k", "not a call")
    dispatcher.scheduler.push("k", {"args": "nope"})
    good = dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take()
    assert claimed is not None and claimed.task_id == good
    assert sum("corrupt call" in r.getMessage() for r in caplog.records) == 2
    assert Managed(dispatcher).get_system_status()["leased"] == 1


def test_requeue_goes_to_the_tail_with_the_same_id_and_a_new_wake_up() -> None:
    dispatcher, queue, clock = make()
    first = dispatcher.submit("k", Call(args=[1]), expiry=30)
    dispatcher.submit("k", Call(args=[2]))
    claimed = dispatcher.take(queue.next())
    assert claimed is not None and claimed.task_id == first
    clock.now += 5
    assert dispatcher.requeue(claimed) is True
    assert queue.messages == 3  # two submits, then the token passed on: two calls, one in flight
    second, again = dispatcher.take(queue.next()), None
    assert second is not None and second.call.args == [2]
    again = dispatcher.take(queue.next())
    assert again is not None and again.task_id == first and again.call.retries == 1
    assert again.task.expires_at == pytest.approx(50.0 + 30)


def test_requeue_after_the_lease_ran_out_does_nothing() -> None:
    dispatcher, queue, clock = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take()
    assert claimed is not None
    clock.now += 11
    assert dispatcher.sweep() == 1  # the lease ran out: the call went back, the sweep minted a token
    assert dispatcher.requeue(claimed) is False
    assert queue.messages == 2 and len(dispatcher.scheduler) == 1


def test_requeue_whose_wake_up_fails_stays_stored() -> None:
    dispatcher, queue, clock = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take(queue.next())
    assert claimed is not None
    queue.fail = True
    assert dispatcher.requeue(claimed) is True  # the passed-on token is lost: logged, not raised
    status = Managed(dispatcher).get_system_status()
    assert (status["backlog_size"], status["leased"]) == (1, 0)
    queue.fail = False
    clock.now += dispatcher.wakeups.ttl
    dispatcher.sweep()  # the lost token is replaced
    again = dispatcher.take(queue.next())
    assert again is not None and again.task_id == claimed.task_id and again.call.retries == 1


def test_deferred_retry_round_trip() -> None:
    dispatcher, queue, clock = make()
    task_id = dispatcher.submit("k", Call(args=[1]), expiry=100)
    claimed = dispatcher.take(queue.next())
    assert claimed is not None
    body = dispatcher.deferred(claimed, Call(args=[1], retries=1))
    assert json.loads(json.dumps(body)) == body
    dispatcher.finish(claimed)
    clock.now += 30
    assert dispatcher.resubmit(body) == task_id
    again = dispatcher.take(queue.next())
    assert again is not None and again.task_id == task_id and again.call.retries == 1
    assert again.task.expires_at == pytest.approx(50.0 + 100)
    assert queue.messages == 2


def test_resubmit_skips_a_stored_call_and_malformed_bodies(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, queue, _ = make()
    dispatcher.submit("k", Call())
    claimed = dispatcher.take()
    assert claimed is not None
    body = dispatcher.deferred(claimed, claimed.call)
    assert dispatcher.resubmit(body) is None  # still leased: its worker died after deferring
    assert queue.messages == 1  # stored already: its lease (and the sweep's tokens) cover it
    for bad in [{}, {"key": "k", "task_id": "x", "call": []}, {**body, "expires_at": "soon"}]:
        assert dispatcher.resubmit(bad) is None
    assert len(dispatcher.scheduler) == 0
    assert sum("malformed delayed retry" in r.getMessage() for r in caplog.records) == 3


def test_expired_calls_are_reported_and_their_wake_up_is_a_no_op() -> None:
    expired: List[ScheduledTask] = []
    clock, queue = Clock(), Queue()
    dispatcher = FairDispatcher(FairScheduler(clock=clock), queue.wake, on_expired=expired.append)
    task_id = dispatcher.submit("k", Call(), expiry=1)
    clock.now += 2
    assert dispatcher.take() is None
    assert [t.task_id for t in expired] == [task_id]


def test_sweep_extends_running_leases_and_wakes_for_dead_workers() -> None:
    dispatcher, queue, clock = make()
    dispatcher.submit("alive", Call())
    dispatcher.submit("dead", Call())
    alive, dead = dispatcher.take(), dispatcher.take()
    assert alive is not None and dead is not None and alive.key == "alive"
    queue.tokens.clear()  # both wake-ups were consumed (taken without their tokens here)
    with dispatcher.running(alive):
        for _ in range(3):
            clock.now += 6
            dispatcher.sweep()
    # The dead worker's call is back with one token in flight (the sweep
    # replaced it once more when it was not taken within its ttl).
    assert dispatcher.scheduler.storage.wakeup_status().in_flight == 1
    again = dispatcher.take(queue.tokens[-1])
    assert again is not None and again.task_id == dead.task_id
    dispatcher.finish(alive)
    assert Managed(dispatcher).get_system_status()["leased"] == 1


def test_management_api() -> None:
    dispatcher, _, _ = make()
    dispatcher.submit("acme", Call(), priority_weight=0.5, tags={"plan": "pro"})
    Managed(dispatcher).set_custom_data("acme", "quota", 10)
    Managed(dispatcher).add_tag("zeta", "plan", "free")
    assert Managed(dispatcher).get_custom_data("acme", "quota") == 10
    assert Managed(dispatcher).get_custom_data("acme", "missing", 7) == 7
    assert Managed(dispatcher).get_custom_data("acme") == {"quota": 10}
    assert Managed(dispatcher).get_tagged_clients("plan") == ["acme", "zeta"]
    assert Managed(dispatcher).get_tagged_clients("plan", "pro") == ["acme"]
    meta = Managed(dispatcher).get_client_metadata("acme")
    assert meta["weight"] == 0.5 and meta["pending_tasks"] == 1 and meta["tags"] == {"plan": "pro"}
    Managed(dispatcher).set_priority_weight("acme", 2.0)
    assert Managed(dispatcher).get_client_metadata("acme")["weight"] == 2.0
    assert Managed(dispatcher).set_priority_weight("acme", 2.0) is True
    assert Managed(dispatcher).add_tag("acme", "seen") is True
    assert Managed(dispatcher).set_custom_data("acme", "n", 1) is True
    assert Managed(dispatcher).get_client_metadata("acme")["lru_key"] == "acme"
    assert Managed(dispatcher).get_system_status() == {
        "backlog": "b", "initialized": True, "storage_type": "InMemoryStorage",
        "backlog_size": 1, "unique_lru_keys": 1, "leased": 0,
        "expired_total": 0, "served_total": 0, "delayed": 0, "health": True,
    }  # fmt: skip


def test_lease_keeper_thread_sweeps_until_stopped() -> None:
    dispatcher, queue, clock = make()
    dispatcher.submit("k", Call())
    assert dispatcher.take() is not None
    clock.now += 11  # the lease ran out: nobody is running this call
    keeper = LeaseKeeper(lambda: [dispatcher], interval=0.01)
    keeper.start()
    deadline = time.monotonic() + 5
    while queue.messages < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    keeper.stop(timeout=5)
    assert queue.messages == 2
    assert dispatcher.take() is not None


def test_lease_keeper_outlives_a_failure_to_list_its_dispatchers(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, queue, clock = make()
    dispatcher.submit("k", Call())
    assert dispatcher.take() is not None
    clock.now += 11
    outage = [True]

    def dispatchers() -> List[FairDispatcher]:
        if outage[0]:
            raise ConnectionError("storage down while a backlog's defaults were written")
        return [dispatcher]

    keeper = LeaseKeeper(dispatchers, interval=60)
    assert keeper.sweep_once() == 0
    assert "could not list the backlogs" in caplog.text
    outage[0] = False
    assert keeper.sweep_once() == 1  # the next pass puts the lease back
    assert queue.messages == 2


def test_call_payload_round_trip_and_validation() -> None:
    call = Call(args=(1, "x"), kwargs={"a": 1}, options={"o": True}, retries=2)
    assert Call.from_payload(call.to_payload()) == call
    for bad in [[], {"args": {}}, {"retries": -1}, {"retries": True}]:
        with pytest.raises((TypeError, ValueError)):
            Call.from_payload(bad)


def test_key_management_mixin_acts_on_the_backlog() -> None:
    dispatcher, _, _ = make()

    class Task(KeyManagement):
        def _fair_dispatcher(self) -> FairDispatcher:
            return dispatcher

        def _fair_backlog(self) -> str:
            return "emails"

    task = Task()
    task.set_priority_weight("acme", 0.5)
    task.set_custom_data("acme", "plan", "pro")
    task.add_tag("acme", "region", "eu")
    assert task.get_custom_data("acme", "plan") == "pro"
    assert task.get_tagged_clients("region") == ["acme"]
    assert task.get_client_metadata("acme")["weight"] == 0.5
    assert task.get_system_status()["backlog"] == "emails"
    with pytest.raises(NotImplementedError):
        KeyManagement().get_system_status()


class Deferrer:
    """Records delayed retries; can fail like a broker that is down."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: List[tuple[Dict[str, Any], float]] = []

    def __call__(self, body: Dict[str, Any], delay: float) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((body, delay))


def test_retry_with_a_delay_waits_in_the_broker_and_finishes_the_lease() -> None:
    dispatcher, _, _ = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take()
    assert claimed is not None
    defer = Deferrer()
    outcome = dispatcher.retry(claimed, Call(args=[1], retries=1), delay=5.0, defer=defer)
    assert outcome is RetryOutcome.DEFERRED
    assert [(body["task_id"], delay) for body, delay in defer.sent] == [(claimed.task_id, 5.0)]
    assert dispatcher.scheduler.status().leased == 0 and len(dispatcher.scheduler) == 0


def test_retry_whose_delayed_publish_fails_is_retried_now() -> None:
    dispatcher, queue, _ = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take(queue.next())
    assert claimed is not None
    outcome = dispatcher.retry(claimed, Call(args=[1], retries=1), delay=5.0, defer=Deferrer(fail=True))
    assert outcome is RetryOutcome.REQUEUED and queue.messages == 2
    again = dispatcher.take()
    assert again is not None and again.task_id == claimed.task_id and again.call.retries == 1


def test_retry_without_delay_requeues_and_after_a_lost_lease_does_nothing() -> None:
    dispatcher, _, clock = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take()
    assert claimed is not None
    assert dispatcher.retry(claimed, Call(args=[1], retries=1)) is RetryOutcome.REQUEUED
    again = dispatcher.take()
    assert again is not None
    clock.now += 11
    dispatcher.sweep()  # the lease ran out: the call went back on its own
    assert dispatcher.retry(again, Call(args=[1], retries=2)) is RetryOutcome.LEASE_LOST
    assert len(dispatcher.scheduler) == 1


def test_retry_the_storage_cannot_take_keeps_the_lease(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher, _, clock = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take()
    assert claimed is not None
    # A retry the storage refuses (here: cannot encode) writes nothing; the lease stays.
    outcome = dispatcher.retry(claimed, Call(args=[float("nan")], retries=1))
    assert outcome is RetryOutcome.LEFT_TO_LEASE
    assert "comes back when its lease runs out" in caplog.text
    assert dispatcher.scheduler.status().leased == 1
    clock.now += 11
    again = dispatcher.take()
    assert again is not None and again.task_id == claimed.task_id and again.call.retries == 0


def test_retry_whose_wake_up_fails_stays_stored() -> None:
    dispatcher, queue, _ = make()
    dispatcher.submit("k", Call(args=[1]))
    claimed = dispatcher.take(queue.next())
    assert claimed is not None
    queue.fail = True
    assert dispatcher.retry(claimed, Call(args=[1], retries=1)) is RetryOutcome.REQUEUED
    status = dispatcher.scheduler.status()
    assert (status.backlog_size, status.leased) == (1, 0)


def test_a_failed_publish_never_removes_a_call() -> None:
    clock, queue = Clock(), Queue()

    class FlakyStorage(InMemoryStorage):
        def remove(self, key: str, task_id: str) -> bool:
            raise StorageUnavailable("storage at 127.0.0.1:1 is not reachable")

    dispatcher = FairDispatcher(FairScheduler(FlakyStorage(), clock=clock), queue.wake)
    queue.fail = True
    assert dispatcher.submit("k", Call(args=[1]), task_id="t1") == "t1"
    assert len(dispatcher.scheduler) == 1


def test_sweep_drops_expired_calls_and_reports_them_without_a_worker() -> None:
    expired: List[ScheduledTask] = []
    dispatcher, _, clock = make()
    dispatcher.on_expired = expired.append
    task_id = dispatcher.submit("k", Call(args=[1]), expiry=5)
    dispatcher.submit("k", Call(args=[2]))
    clock.now += 6
    assert dispatcher.sweep() == 0
    assert [task.task_id for task in expired] == [task_id]
    assert dispatcher.scheduler.status().expired_total == 1 and len(dispatcher.scheduler) == 1


def test_tags_are_stored_with_the_call_or_not_at_all() -> None:
    dispatcher, _, _ = make()
    with pytest.raises(TypeError):
        dispatcher.submit("k", Call(args=[object()]), tags={"plan": "pro"})
    assert dispatcher.scheduler.keys_with_tag("plan") == []
    dispatcher.submit("k", Call(args=[1]), tags={"plan": "pro"})
    assert dispatcher.scheduler.keys_with_tag("plan") == ["k"]


class CountingStorage(InMemoryStorage):
    """Counts storage steps of push_many."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: List[int] = []

    def push_many(self, tasks: Any, **options: Any) -> List[str]:
        self.batches.append(len(tasks))
        return super().push_many(tasks, **options)


def test_submit_many_stores_in_batches_and_publishes_at_most_once_per_batch() -> None:
    clock, queue, storage = Clock(), Queue(), CountingStorage()
    dispatcher = FairDispatcher(FairScheduler(storage, clock=clock, lease_seconds=10), queue.wake)
    ids = dispatcher.submit_many("k", (Call(args=[n]) for n in range(2500)))
    assert storage.batches == [1000, 1000, 500] and len(ids) == len(set(ids)) == 2500
    assert len(queue.tokens) == 3
    claimed = dispatcher.take(queue.next())
    assert claimed is not None and claimed.task_id == ids[0] and claimed.token is not None
    assert len(queue.tokens) == 2 + 8  # the worker fanned out FANOUT tokens before running
    with pytest.raises(TypeError):
        dispatcher.submit_many("k", [Call(args=[1]), Call(args=[object()])])
    assert len(dispatcher.scheduler) == 2499


def test_outstanding_wake_ups_never_exceed_max_wakeups() -> None:
    clock, queue = Clock(), Queue()
    dispatcher = FairDispatcher(FairScheduler(clock=clock, lease_seconds=10), queue.wake, max_wakeups=4)
    for n in range(50):
        dispatcher.submit("k", Call(args=[n]))
    assert len(queue.tokens) == 4
    assert dispatcher.take() is None  # a stale wake-up while 4 are outstanding: a no-op
    ran = 0
    while queue.tokens:
        claimed = dispatcher.take(queue.next())
        if claimed is not None:
            ran += 1
            dispatcher.finish(claimed)
        assert dispatcher.scheduler.storage.wakeup_status().outstanding <= 4
    assert ran == 50 and len(dispatcher.scheduler) == 0
    assert dispatcher.scheduler.storage.wakeup_status().outstanding == 0


def test_run_budget_keeps_the_token_then_releases_it() -> None:
    clock, queue = Clock(), Queue()
    dispatcher = FairDispatcher(FairScheduler(clock=clock, lease_seconds=10), queue.wake, max_wakeups=1)
    for n in range(3):
        dispatcher.submit("k", Call(args=[n]))
    token = queue.next()
    claimed = dispatcher.take(token)
    assert claimed is not None and queue.tokens == []
    assert dispatcher.finish(claimed, keep_token=True).kept  # no publish: the worker goes on
    claimed = dispatcher.take(token)
    assert claimed is not None and claimed.call.args == [1] and queue.tokens == []
    assert dispatcher.finish(claimed, keep_token=True).kept
    assert dispatcher.release_token(token) is True and queue.tokens == [token]  # budget spent
    claimed = dispatcher.take(queue.next())
    assert claimed is not None and claimed.call.args == [2]
    finished = dispatcher.finish(claimed, keep_token=True)
    assert not finished.kept and finished.publish == ()  # nothing waits: retired
    assert dispatcher.scheduler.storage.wakeup_status().outstanding == 0


def test_registered_slots_grow_the_tokens_to_the_fleet() -> None:
    clock, queue = Clock(), Queue()
    dispatcher = FairDispatcher(FairScheduler(clock=clock, lease_seconds=10), queue.wake, max_wakeups=2)
    for n in range(40):
        dispatcher.submit("k", Call(args=[n]))
    assert dispatcher.scheduler.storage.wakeup_status().outstanding == 2  # max_wakeups
    dispatcher.slots = 10  # this worker runs 10 calls at once
    first = dispatcher.take(queue.tokens[0])
    assert first is not None and dispatcher.wakeups.max_wakeups == 10
    status = dispatcher.scheduler.storage.wakeup_status()
    assert (status.held, status.in_flight) == (1, 9)  # one more in flight + 8 fanned out
    other = FairDispatcher(dispatcher.scheduler, queue.wake, max_wakeups=2)
    other.slots = 4  # a second worker joins: 14 slots in the fleet
    assert other.register_slots() == 14
    clock.now += 3 * dispatcher.wakeups.ttl + 1  # the first worker's registration runs out
    assert other.register_slots() == 4
    producer = FairDispatcher(dispatcher.scheduler, queue.wake, max_wakeups=2)
    producer.sweep()  # a dispatcher without slots (a producer) registers nothing
    assert producer.wakeups.max_wakeups == 2 and other.register_slots() == 4


def test_a_saturated_fleet_keeps_its_late_tokens_instead_of_piling_up_replacements() -> None:
    clock, queue = Clock(), Queue()
    worker = FairDispatcher(FairScheduler(clock=clock, lease_seconds=100), queue.wake, max_wakeups=3)
    worker.slots = 1  # one slot in the whole fleet
    for n in range(10):
        worker.submit("k", Call(args=[n]))
    running = worker.take(queue.next())
    assert running is not None  # the only slot is busy; two tokens wait in the broker
    clock.now += worker.wakeups.ttl + 1  # they outlive their ttl behind the busy slot
    worker.sweep()
    assert queue.messages == 3 and worker.scheduler.storage.wakeup_status().in_flight == 2  # none replaced
    worker.finish(running)  # the slot frees up: the late tokens are still good
    assert worker.take(queue.next()) is not None


def test_fleet_max_wakeups_is_twice_the_fleet_within_the_bound() -> None:
    assert fleet_max_wakeups(64, 0, worker=False) == fleet_max_wakeups(64, 0, worker=True) == 64
    assert fleet_max_wakeups(64, 2, worker=False) == fleet_max_wakeups(64, 2, worker=True) == 4
    assert fleet_max_wakeups(64, 40, worker=False) == fleet_max_wakeups(64, 40, worker=True) == 64
    assert fleet_max_wakeups(2, 10, worker=False) == 2  # producers never pass the bound
    assert fleet_max_wakeups(2, 10, worker=True) == 10  # workers grow to the fleet's slots


def test_producers_size_their_wakeups_to_the_registered_fleet() -> None:
    clock, queue = Clock(), Queue()
    scheduler = FairScheduler(clock=clock, lease_seconds=30)
    worker = FairDispatcher(scheduler, queue.wake)  # max_wakeups: the default 64
    worker.slots = 2
    assert worker.register_slots() == 4  # 2 slots: 2 x 2 tokens
    producer = FairDispatcher(scheduler, queue.wake)
    for n in range(100):
        producer.submit("k", Call(args=[n]))
    assert queue.messages == 4 and scheduler.storage.wakeup_status().outstanding == 4
    assert producer.fleet == 2 and producer.producer_wakeups.max_wakeups == 4
    # The registration runs out (no worker sweeps any more): after a token ttl
    # the producer reads the fleet again and goes back to the configured bound.
    clock.now += 3 * worker.wakeups.ttl + 1
    producer.submit_many("k", [Call(args=[n]) for n in range(3)])
    assert producer.fleet == 0 and producer.producer_wakeups.max_wakeups == 64
    assert queue.messages == 5  # one more wake-up for that batch


def test_check_room_refuses_calls_that_do_not_fit_under_max_backlog() -> None:
    dispatcher, _, _ = make()
    dispatcher.check_room("k", 1_000)  # no limit
    dispatcher.set_max_backlog("k", 3)
    dispatcher.submit("k", Call())
    dispatcher.check_room("k", 2)
    with pytest.raises(BacklogFull, match=r"holds 1 waiting calls, its max_backlog is 3: 3 more refused"):
        dispatcher.check_room("k", 3)
    with pytest.raises(ValueError, match="lru_key"):
        dispatcher.check_room("", 1)
