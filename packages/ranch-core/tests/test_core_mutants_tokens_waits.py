"""Wake-up tokens of a call leased twice: the token of a lease that ran out
leaves the token that took the call back alone (tests from the mutation run
of 2026-11-30 over the core with group controls; ``TokenBook.unhold``).

A call whose lease ran out is taken back and leased again under the same
task id, by another token, while the first token is still held (only a
sweep retires it). Retiring the first token must not unbind the call from
the second: the second one's finish, and an ``extend`` of its lease, still
find it.
"""

from __future__ import annotations

from typing import Tuple

from ranch_core import InMemoryStorage
from ranch_core.models import ScheduledTask, WakeupPolicy

POLICY = WakeupPolicy(max_wakeups=4, ttl=10.0)


def leased_twice() -> Tuple[InMemoryStorage, str, str]:
    """Call ``t`` leased at 0.0 for 5 s by a minted token, then, its lease
    run out, taken back at 6.0 by a stale token (room to adopt it) until 11.0."""
    storage = InMemoryStorage()
    (first,) = storage.push(ScheduledTask("t", "k", 1, 0.0), wakeups=POLICY)
    popped = storage.pop(0.0, 5.0, token=first, wakeups=POLICY)
    assert popped.task is not None and popped.task.task_id == "t"
    second = "stale-token"
    again = storage.pop(6.0, 5.0, token=second, wakeups=POLICY)
    assert again.task is not None and again.task.task_id == "t"
    assert [t.task_id for t in again.reclaimed] == ["t"]
    assert storage.wakeup_status().held == 2  # the first token is not swept yet
    return storage, first, second


def test_a_late_finish_by_the_token_whose_lease_ran_out_comes_after_the_new_holders() -> None:
    storage, first, second = leased_twice()
    assert storage.finish("t", 7.0, token=second, wakeups=POLICY).done
    late = storage.finish("t", 8.0, token=first, wakeups=POLICY)
    assert not late.done  # the call is gone: nothing to ack
    assert late.publish == () and not late.kept  # no call waits: the token retires
    assert storage.wakeup_status().held == 0


def test_releasing_the_token_whose_lease_ran_out_keeps_the_new_holder_bound_to_the_call() -> None:
    storage, first, _ = leased_twice()
    assert storage.release_token(first, 7.0, POLICY) == []
    assert storage.wakeup_status().held == 1
    assert storage.extend("t", 20.0)  # the second token's deadline follows its lease
    storage.sweep_wakeups(11.0, POLICY)  # the lease's first deadline: still running
    assert storage.wakeup_status().held == 1
    storage.sweep_wakeups(20.0, POLICY)  # the extended deadline: its worker died
    assert storage.wakeup_status().held == 0
