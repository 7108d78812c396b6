"""Wake-up token corners of the in-memory storage and the scheduler (tests from the mutation run).

Deadlines of kept and passed-on tokens, a token retired by the sweep while
its call ran (taken back only if there is room), a kept token retired by a
pop that finds nothing, and the arguments of ``register_slots``.
"""

from __future__ import annotations

from typing import List, Tuple

import pytest
from ranch_core import FairScheduler, InMemoryStorage
from ranch_core.backends.tokens import TokenBook
from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import LOST_AFTER


def task(task_id: str, key: str = "k") -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, 0.0)


def two_waiting(policy: WakeupPolicy) -> Tuple[InMemoryStorage, List[str]]:
    storage = InMemoryStorage()
    tokens = storage.push(task("a"), wakeups=policy) + storage.push(task("b"), wakeups=policy)
    return storage, tokens


def test_push_stores_weight_and_tags_and_mints_with_the_call() -> None:
    storage = InMemoryStorage()
    minted = storage.push(task("a"), weight=0.5, tags={"plan": "pro"}, wakeups=WakeupPolicy())
    assert len(minted) == 1 and storage.wakeup_status().in_flight == 1
    meta = storage.metadata("k")
    assert (meta.weight, meta.tags) == (0.5, {"plan": "pro"})
    assert storage.push(task("b")) == []  # no policy, no token


def test_a_kept_token_lives_ttl_from_its_finish() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=10.0)
    storage, (first, _) = two_waiting(policy)
    popped = storage.pop(0.0, 100.0, token=first, wakeups=policy).task
    assert popped is not None
    finished = storage.finish(popped.task_id, 1.0, token=first, wakeups=policy, keep_token=True)
    assert finished.kept and finished.publish == ()
    storage.sweep_wakeups(10.5, policy)  # the other token, minted at 0.0, is replaced: not this one
    assert storage.wakeup_status().held == 1
    storage.sweep_wakeups(11.0, policy)  # 1.0 + ttl: retired
    assert storage.wakeup_status().held == 0


def test_a_passed_on_token_travels_ttl_from_its_finish() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=10.0)
    storage = InMemoryStorage()
    (first,) = storage.push(task("a"), wakeups=policy)
    popped = storage.pop(0.0, 100.0, token=first, wakeups=policy).task
    assert popped is not None
    storage.push(task("b"))  # waits, with no token in flight for it
    finished = storage.finish(popped.task_id, 1.0, token=first, wakeups=policy)
    assert finished.publish == (first,) and not finished.kept
    assert storage.sweep_wakeups(10.5, policy) == []  # still travelling: nothing to replace
    assert storage.wakeup_status().in_flight == 1
    assert len(storage.sweep_wakeups(11.0, policy)) == 1  # lost at 1.0 + ttl: replaced


def test_a_held_token_is_retired_at_its_deadline_exactly() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage, (first, _) = two_waiting(policy)
    assert storage.pop(0.0, 5.0, token=first, wakeups=policy).task is not None
    storage.sweep_wakeups(4.9, policy)
    assert storage.wakeup_status().held == 1
    storage.sweep_wakeups(5.0, policy)  # the lease's deadline
    assert storage.wakeup_status().held == 0


def test_a_token_retired_while_its_call_ran_is_kept_again_if_there_is_room() -> None:
    policy = WakeupPolicy(max_wakeups=3, ttl=100.0)
    storage, (first, _) = two_waiting(policy)
    popped = storage.pop(0.0, 5.0, token=first, wakeups=policy).task
    assert popped is not None
    storage.sweep_wakeups(6.0, policy)  # the lease's deadline passed: the held token is retired
    assert storage.wakeup_status().held == 0
    finished = storage.finish(popped.task_id, 6.0, token=first, wakeups=policy, keep_token=True)
    assert finished.kept and storage.wakeup_status().held == 1  # 1 outstanding < 3: taken back


def test_a_token_retired_while_its_call_ran_is_dropped_when_the_bound_is_reached() -> None:
    policy = WakeupPolicy(max_wakeups=2, ttl=100.0)
    storage, (first, _) = two_waiting(policy)
    popped = storage.pop(0.0, 5.0, token=first, wakeups=policy).task
    assert popped is not None
    storage.sweep_wakeups(6.0, policy)
    assert len(storage.push(task("c"), wakeups=policy)) == 1  # now 2 outstanding: the bound
    finished = storage.finish(popped.task_id, 6.0, token=first, wakeups=policy, keep_token=True)
    assert not finished.kept and finished.publish == ()
    status = storage.wakeup_status()
    assert status.in_flight + status.held == 2


def test_a_kept_token_that_finds_nothing_is_retired() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage, (first, _) = two_waiting(policy)
    popped = storage.pop(0.0, 50.0, token=first, wakeups=policy).task
    assert popped is not None
    assert storage.finish(popped.task_id, 1.0, token=first, wakeups=policy, keep_token=True).kept
    assert storage.pop(1.0, 50.0).task is not None  # someone else takes the last call
    assert storage.pop(2.0, 50.0, token=first, wakeups=policy).task is None
    assert storage.wakeup_status().held == 0


def test_scheduler_finish_hands_the_token_back_unless_asked_to_keep_it() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    scheduler = FairScheduler(clock=lambda: 0.0)
    (token,) = scheduler.store("k", [1, 2, 3], wakeups=policy).wakeups
    taken = scheduler.take(token, policy)
    assert taken.task is not None
    finished = scheduler.finish(taken.task.task_id, token=token, wakeups=policy)
    assert finished.done and not finished.kept


@pytest.mark.parametrize(
    ("worker", "slots", "error", "message"),
    [
        ("", 1, ValueError, "worker must not be empty"),
        (3, 1, TypeError, "worker must be a str"),
        ("w", -1, ValueError, "slots must be an int >= 0, not -1"),
        ("w", True, ValueError, "slots must be an int >= 0, not True"),
        ("w", 1.0, ValueError, "slots must be an int >= 0, not 1.0"),
    ],
)
def test_register_slots_names_the_bad_argument(
    worker: object, slots: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=f"^{message}"):
        FairScheduler().register_slots(worker, slots, 30.0)  # type: ignore[arg-type]


def test_register_slots_accepts_zero_and_returns_the_live_total() -> None:
    scheduler = FairScheduler(clock=lambda: 0.0)
    assert scheduler.register_slots("w1", 4, 30.0) == 4
    assert scheduler.register_slots("w2", 0, 30.0) == 4  # a worker with no free slot


def test_finish_without_a_token_mints_one_for_a_requeued_call_only() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage = InMemoryStorage()
    storage.push(task("a"))
    storage.push(task("b"))
    first, second = storage.pop(0.0, 50.0).task, storage.pop(0.0, 50.0).task
    assert first is not None and second is not None
    acked = storage.finish(first.task_id, 1.0, wakeups=policy)
    assert (acked.done, acked.publish, acked.kept) == (True, (), False)
    retried = storage.finish(second.task_id, 1.0, requeue=second, wakeups=policy)
    assert retried.done is True and len(retried.publish) == 1  # one wake-up for the call put back
    assert storage.wakeup_status().in_flight == 1
    storage.sweep_wakeups(100.5, policy)  # minted at 1.0: still travelling at 100.5
    assert storage.wakeup_status().in_flight == 1 and storage.sweep_wakeups(100.6, policy) == []
    gone = storage.finish("nobody", 2.0, requeue=task("nobody"), wakeups=policy)
    assert (gone.done, gone.publish) == (False, ())  # no lease: nothing written, nothing minted


def test_finish_without_wakeups_says_whether_it_held_the_lease() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    popped = storage.pop(0.0, 50.0).task
    assert popped is not None
    assert storage.finish(popped.task_id, 1.0).done is True
    assert storage.finish(popped.task_id, 1.0).done is False
    with pytest.raises(ValueError, match=r"^finish: requeue\.task_id must be task_id"):
        storage.finish("a", 1.0, requeue=task("b"))


def test_storage_checks_batches_and_token_pops_with_named_messages() -> None:
    storage = InMemoryStorage()
    with pytest.raises(ValueError, match=r"^push_many takes at most 1000 tasks, not 1001"):
        storage.push_many([task(f"t{n}") for n in range(1001)])
    with pytest.raises(ValueError, match=r"^push_many takes tasks of one key"):
        storage.push_many([task("a", "k1"), task("b", "k2")])
    with pytest.raises(DuplicateTask, match=r"^push_many names one task_id twice"):
        storage.push_many([task("a"), task("a")])
    with pytest.raises(ValueError, match=r"^pop with a token needs wakeups \(a WakeupPolicy\)"):
        storage.pop(0.0, 10.0, token="t")
    assert storage.waiting() == 0


def test_a_pop_given_a_policy_but_no_token_takes_no_token() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage = InMemoryStorage()
    storage.push(task("a"))
    result = storage.pop(0.0, 10.0, wakeups=policy)
    assert result.task is not None and result.minted == ()
    assert storage.wakeup_status().held == 0 and storage.wakeup_status().in_flight == 0


def test_finish_without_a_token_mints_exactly_one_and_only_for_a_requeue() -> None:
    policy = WakeupPolicy(max_wakeups=8, ttl=100.0)
    storage = InMemoryStorage()
    for name in "abcd":
        storage.push(task(name))
    first, second = storage.pop(0.0, 50.0).task, storage.pop(0.0, 50.0).task
    assert first is not None and second is not None
    assert storage.finish(first.task_id, 1.0, wakeups=policy).publish == ()  # two wait, but an ack mints none
    assert len(storage.finish(second.task_id, 1.0, requeue=second, wakeups=policy).publish) == 1


def test_a_held_token_retired_by_the_sweep_stays_retired_when_its_lease_is_extended() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage, (first, _) = two_waiting(policy)
    assert storage.pop(0.0, 5.0, token=first, wakeups=policy).task is not None
    storage.sweep_wakeups(6.0, policy)  # the held token's deadline (the lease's) passed
    assert storage.wakeup_status().held == 0
    assert storage.extend("a", 20.0)  # the lease itself was not reclaimed yet
    assert storage.wakeup_status().held == 0


def test_while_the_queue_moves_a_token_is_lost_only_lost_after_ttls_late() -> None:
    policy = WakeupPolicy(max_wakeups=4, ttl=10.0)
    book = TokenBook()
    late = book.mint(0.0, policy, 1, waiting=1)[0]  # due back by 10.0
    book.delivered("another", 30.0)  # a wake-up was taken just now: the queue moves
    book.sweep(30.5, policy.ttl)  # 20.5 s late, under LOST_AFTER ttls
    assert late in book.flight
    lost_at = 10.0 + LOST_AFTER * policy.ttl
    book.delivered("another", lost_at - 1.0)  # still moving
    book.sweep(lost_at - 0.1, policy.ttl)
    assert late in book.flight
    book.sweep(lost_at, policy.ttl)
    assert late not in book.flight


def test_a_quiet_queue_waits_one_ttl_again_after_a_retirement_even_once_it_moved() -> None:
    """The wait between two retirements doubles with each (``ttl * 2**rounds``); a moving
    queue resets the rounds, so the next retirement waits one ttl, not none."""
    policy = WakeupPolicy(max_wakeups=8, ttl=10.0)
    book = TokenBook()
    book.mint(0.0, policy, 1, waiting=4)
    book.sweep(10.0, policy.ttl)  # quiet since ever: the late token is retired
    assert (book.rounds, book.retired_at, book.flight) == (1, 10.0, {})
    book.delivered("some-token", 12.0)  # the queue moved: rounds start again
    assert book.rounds == 0
    late = book.mint(0.0, policy, 1, waiting=4)[0]
    book.sweep(19.9, policy.ttl)  # quiet for 7.9 s only: not yet
    assert late in book.flight
    book.sweep(22.0, policy.ttl)  # quiet for a ttl, a ttl after the last retirement
    assert late not in book.flight
    for rounds, wait in [(1, 20.0), (2, 40.0), (3, 80.0)]:
        late = book.mint(0.0, policy, 1, waiting=4)[0]
        last = book.retired_at
        book.sweep(last + wait - 0.1, policy.ttl)
        assert late in book.flight and book.rounds == rounds
        book.sweep(last + wait, policy.ttl)
        assert late not in book.flight and book.rounds == rounds + 1


def test_a_pop_with_a_kept_token_does_not_count_as_the_queue_moving() -> None:
    """A run budget's kept token never went through the broker: its pops leave the queue
    quiet, so a late token in flight is still retired one ttl after its deadline."""
    policy = WakeupPolicy(max_wakeups=4, ttl=10.0)
    storage, (first, _) = two_waiting(policy)  # both travel until 10.0
    assert storage.pop(1.0, 100.0, token=first, wakeups=policy).task is not None  # moved at 1.0
    assert storage.finish("a", 2.0, token=first, wakeups=policy, keep_token=True).kept
    assert storage.pop(15.0, 100.0, token=first, wakeups=policy).task is not None  # kept: no move
    storage.sweep_wakeups(16.0, policy)  # quiet since 1.0: the second token is lost
    assert storage.wakeup_status().in_flight == 0
