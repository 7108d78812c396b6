"""Every check names the argument in its message; weights and expiry are bounded."""

from __future__ import annotations

import math
from typing import Any, Callable, List, Tuple, Type

import pytest
from ranch_core import FairScheduler, InMemoryStorage, validation
from ranch_core.algorithm import MAX_WEIGHT, MIN_WEIGHT
from ranch_core.models import ScheduledTask

Case = Tuple[Callable[[Any], Any], Any, Type[Exception], str]

CASES: List[Case] = [
    (validation.check_key, 3, TypeError, "key must be a str, not int"),
    (validation.check_key, "", ValueError, "key must not be empty"),
    (validation.check_key, "\ud800", ValueError, "key is not valid UTF-8"),
    (lambda v: validation.check_key(v, "namespace"), "", ValueError, "namespace must not be empty"),
    (validation.check_key, ("g", "m"), TypeError, "key must be a str here, not a tuple: two-level"),
    (validation.check_any_key, 3, TypeError, "key must be a str or a \\(group, member\\) pair, not int"),
    (validation.check_any_key, ("g",), ValueError, "key must be a \\(group, member\\) pair: 2 items, not 1"),
    (validation.check_any_key, ["g", "m", "x"], ValueError, "2 items, not 3"),
    (validation.check_any_key, ("g", 3), TypeError, "key's member must be a str, not int"),
    (validation.check_any_key, (None, "m"), TypeError, "key's group must be a str, not NoneType"),
    (validation.check_any_key, ("", "m"), ValueError, "key's group must not be empty"),
    (validation.check_any_key, ("g", ""), ValueError, "key's member must not be empty"),
    (
        lambda v: validation.check_any_key(v, "lru_key"),
        ("g", "\ud800"),
        ValueError,
        "lru_key's member is not valid",
    ),
    (validation.check_weight, "1", TypeError, "weight must be a number, not str"),
    (validation.check_weight, True, TypeError, "weight must be a number, not bool"),
    (validation.check_weight, math.nan, ValueError, "weight must be finite"),
    (validation.check_weight, math.inf, ValueError, "weight must be finite"),
    (validation.check_weight, 0, ValueError, "weight must be between 0.001 and 1000.0, got 0"),
    (validation.check_weight, -1.0, ValueError, "weight must be between 0.001 and 1000.0"),
    (validation.check_weight, 1e308, ValueError, "weight must be between 0.001 and 1000.0, got 1e"),
    (validation.check_weight, 10**400, ValueError, "weight must be between .* too large for a float"),
    (validation.check_weight, MIN_WEIGHT / 2, ValueError, "weight must be between"),
    (validation.check_weight, MAX_WEIGHT + 1, ValueError, "weight must be between"),
    (lambda v: validation.check_weight(v, "weight_function result"), 0, ValueError, "weight_function result"),
    (validation.check_optional_weight, "x", TypeError, "weight must be a number"),
    (validation.check_expiry, -0.5, ValueError, "expiry must be >= 0 seconds"),
    (validation.check_expiry, "soon", TypeError, "expiry must be a number, not str"),
    (validation.check_expiry, math.nan, ValueError, "expiry must be finite"),
    (validation.check_expiry, 10**400, ValueError, "expiry must be between 0 and .* too large for a float"),
    (validation.check_expiry, 1e12, ValueError, "expiry must be at most .* use None"),
    (validation.check_lease, 0, ValueError, "lease_seconds must be greater than 0"),
    (validation.check_lease, "5", TypeError, "lease_seconds must be a number"),
    (
        validation.check_lease,
        10**400,
        ValueError,
        "lease_seconds must be a finite number, got an int too large",
    ),
    (
        lambda v: validation.check_optional_weight(v, "default_weight"),
        0,
        ValueError,
        "default_weight must be",
    ),
    (validation.check_limit, 0, ValueError, "limit must be >= 1"),
    (validation.check_limit, 1.5, TypeError, "limit must be an int, not float"),
    (validation.check_limit, True, TypeError, "limit must be an int, not bool"),
    (lambda v: validation.check_name(v, "task_id"), "", ValueError, "task_id must not be empty"),
    (lambda v: validation.check_name(v, "tag name"), 7, TypeError, "tag name must be a str"),
    (validation.check_tag_value, 3, TypeError, "tag value must be a str, not int"),
    (validation.check_tag_value, "\udfff", ValueError, "tag value is not valid UTF-8"),
    (validation.check_tags, ["plan"], TypeError, "tags must be a mapping of str to str, not list"),
    (validation.check_tags, {"": "x"}, ValueError, "tag name must not be empty"),
    (validation.check_tags, {"plan": 3}, TypeError, "tag 'plan' must be a str, not int"),
]


@pytest.mark.parametrize(("check", "value", "error", "message"), CASES)
def test_bad_value_names_the_argument(
    check: Callable[[Any], Any], value: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        check(value)
    assert not isinstance(raised.value, OverflowError)


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (validation.check_weight, MIN_WEIGHT, MIN_WEIGHT),
        (validation.check_weight, MAX_WEIGHT, MAX_WEIGHT),
        (validation.check_weight, 2, 2.0),
        (validation.check_optional_weight, None, None),
        (validation.check_expiry, None, None),
        (validation.check_expiry, 0, 0.0),
        (validation.check_expiry, validation.MAX_EXPIRY, validation.MAX_EXPIRY),
        (validation.check_tag_value, "", ""),
        (validation.check_tags, None, {}),
        (validation.check_tags, {"plan": "pro"}, {"plan": "pro"}),
        (validation.check_limit, 1, 1),
        (validation.check_lease, 0.5, 0.5),  # under a second is a lease too
        (validation.check_any_key, "g", "g"),
        (validation.check_any_key, ("g", "m"), ("g", "m")),
        (validation.check_any_key, ["g", "m"], ("g", "m")),  # a pair after JSON
    ],
)
def test_good_values_pass(check: Callable[[Any], Any], value: Any, expected: Any) -> None:
    assert check(value) == expected


def test_scheduler_refuses_huge_numbers_with_value_error() -> None:
    scheduler = FairScheduler(clock=lambda: 0.0)
    for call, name in [
        (lambda: scheduler.set_weight("k", 1e308), "weight"),
        (lambda: scheduler.set_weight("k", 10**400), "weight"),
        (lambda: scheduler.push("k", 1, weight=10**400), "weight"),
        (lambda: scheduler.push("k", 1, expiry=10**400), "expiry"),
        (lambda: scheduler.push("k", 1, tags={"plan": None}), "tag 'plan'"),
        (lambda: scheduler.expire(0), "limit"),
        (lambda: scheduler.repair(-1), "limit"),
    ]:
        with pytest.raises((TypeError, ValueError), match=name):
            call()
    assert len(scheduler) == 0 and scheduler.metadata("k").weight == 1.0


def test_weight_function_result_out_of_range_falls_back_to_the_stored_weight() -> None:
    scheduler = FairScheduler(weight_function=lambda key, meta: 1e308, clock=lambda: 0.0)
    for i in range(4):
        scheduler.push("a", i)
        scheduler.push("b", i)
    keys = []
    for _ in range(4):
        task = scheduler.pop()
        assert task is not None
        keys.append(task.key)
    assert keys == ["a", "b", "a", "b"]  # 1e308 was refused: no key ran away


def test_memory_storage_has_nothing_to_repair() -> None:
    storage = InMemoryStorage()
    storage.push(ScheduledTask("t", "k", 1, 0.0))
    assert FairScheduler(storage).repair() == []
