"""``InMemoryStorage`` corners the conformance suite does not reach (tests from the mutation run)."""

from __future__ import annotations

import math

import pytest
from ranch_core import InMemoryStorage
from ranch_core.models import ScheduledTask


def task(task_id: str, key: str = "k", payload: object = 1, expires_at: object = None) -> ScheduledTask:
    return ScheduledTask(task_id, key, payload, 0.0, expires_at)  # type: ignore[arg-type]


def test_metadata_counts_due_calls_only_when_given_now() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", expires_at=5.0))
    storage.push(task("b"))
    assert storage.metadata("k").pending_tasks == 2  # no clock: every stored call
    assert storage.metadata("k", 4.0).pending_tasks == 2
    assert storage.metadata("k", 5.0).pending_tasks == 1  # "a" is due: left out
    assert storage.metadata("unknown", 5.0).pending_tasks == 0


def test_requeue_without_a_serializer_keeps_the_object() -> None:
    storage = InMemoryStorage(serializer=None)
    payload = {1, 2}  # a set: no serializer could carry it, none is asked to
    storage.push(task("a", payload=payload))
    popped = storage.pop(0.0, 10.0).task
    assert popped is not None and popped.payload is payload
    assert storage.requeue(task("a", payload=payload | {3}))
    again = storage.pop(1.0, 10.0).task
    assert again is not None and again.payload == {1, 2, 3}


@pytest.mark.parametrize("value", [math.nan, math.inf, {"x": -math.inf}, object()])
def test_custom_data_that_json_cannot_carry_is_refused_by_name(value: object) -> None:
    storage = InMemoryStorage()
    with pytest.raises(TypeError, match="custom data 'quota' cannot be encoded as JSON"):
        storage.set_custom_data("k", "quota", value)
    assert storage.metadata("k").custom_data == {}


def test_waiting_and_status_leave_out_due_calls_only_when_given_now() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", expires_at=5.0))
    storage.push(task("b", expires_at=9.0))
    storage.push(task("c"))
    assert storage.waiting() == 3 and storage.status().backlog_size == 3
    assert storage.waiting(4.0) == 3 and storage.status(4.0).backlog_size == 3
    assert storage.waiting(5.0) == 2 and storage.status(5.0).backlog_size == 2
    assert storage.waiting(9.0) == 1 and storage.status(9.0).backlog_size == 1
    assert storage.status(9.0).expired_total == 0  # counting drops nothing
