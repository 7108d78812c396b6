"""Each check's whole message, word for word: what a user reads names the argument,
what it must be and what it got (``test_core_validation.py`` matches parts of them)."""

from __future__ import annotations

import math
from typing import Any, Callable, List, Tuple

import pytest
from ranch_core import validation
from ranch_core.models import RateLimit, RuntimeCost

YEARS = "315576000 seconds (10 years)"
COUNT = validation.MAX_COUNT
#: The slowest rate there is, to the last bit: one call a year.
ONE_A_YEAR = f"{validation.MIN_RATE!r}/s"

Case = Tuple[Callable[[], Any], type, str]

CASES: List[Case] = [
    (lambda: validation.check_key(3), TypeError, "key must be a str, not int"),
    (lambda: validation.check_key(""), ValueError, "key must not be empty"),
    (
        lambda: validation.check_key(("g", "m")),
        TypeError,
        "key must be a str here, not a tuple: two-level (group, member) keys are not taken here",
    ),
    (lambda: validation.check_any_key(3), TypeError, "key must be a str or a (group, member) pair, not int"),
    (
        lambda: validation.check_any_key(("g",)),
        ValueError,
        "key must be a (group, member) pair: 2 items, not 1",
    ),
    (lambda: validation.check_any_key(("g", 3)), TypeError, "key's member must be a str, not int"),
    (lambda: validation.check_any_key((None, "m")), TypeError, "key's group must be a str, not NoneType"),
    (lambda: validation.check_any_key(("", "m")), ValueError, "key's group must not be empty"),
    (lambda: validation.check_weight("1"), TypeError, "weight must be a number, not str"),
    (lambda: validation.check_weight(math.nan), ValueError, "weight must be finite, got nan"),
    (lambda: validation.check_weight(0), ValueError, "weight must be between 0.001 and 1000.0, got 0"),
    (
        lambda: validation.check_weight(10**400),
        ValueError,
        "weight must be between 0.001 and 1000.0, got an int too large for a float",
    ),
    (lambda: validation.check_expiry(-0.5), ValueError, "expiry must be >= 0 seconds, got -0.5"),
    (
        lambda: validation.check_expiry(1e12),
        ValueError,
        f"expiry must be at most {YEARS}, got 1000000000000.0; use None for a call that never expires",
    ),
    (
        lambda: validation.check_expiry(10**400),
        ValueError,
        f"expiry must be between 0 and {YEARS}, got an int too large for a float",
    ),
    (lambda: validation.check_delay(-1), ValueError, "delay must be >= 0 seconds, got -1"),
    (lambda: validation.check_delay("soon"), TypeError, "delay must be a number, not str"),
    (lambda: validation.check_cost(-1), ValueError, f"cost must be between 0 and {YEARS}, got -1"),
    (lambda: validation.check_cost(4e8), ValueError, f"cost must be between 0 and {YEARS}, got 400000000.0"),
    (
        lambda: validation.check_cost(10**400),
        ValueError,
        f"cost must be between 0 and {YEARS}, got an int too large for a float",
    ),
    (lambda: validation.check_cost("1"), TypeError, "cost must be a number, not str"),
    (
        lambda: validation.check_cost_mode(3),
        TypeError,
        "cost must be 'calls', 'runtime' or a RuntimeCost, not int",
    ),
    (lambda: validation.check_cost_mode("time"), ValueError, "cost must be 'calls' or 'runtime', not 'time'"),
    (lambda: validation.check_lease(0), ValueError, "lease_seconds must be greater than 0, got 0"),
    (lambda: validation.check_lease(math.inf), ValueError, "lease_seconds must be finite, got inf"),
    (
        lambda: validation.check_lease(10**400),
        ValueError,
        "lease_seconds must be a finite number, got an int too large for a float",
    ),
    (lambda: validation.check_timeout(-1), ValueError, "timeout must be >= 0 seconds or None, got -1"),
    (lambda: validation.check_timeout("1"), TypeError, "timeout must be a number, not str"),
    (lambda: validation.check_limit(0), ValueError, "limit must be >= 1, got 0"),
    (lambda: validation.check_limit(1.5), TypeError, "limit must be an int, not float"),
    (lambda: validation.check_tag_value(3), TypeError, "tag value must be a str, not int"),
    (lambda: validation.check_tags(["plan"]), TypeError, "tags must be a mapping of str to str, not list"),
    (lambda: validation.check_tags({"plan": 3}), TypeError, "tag 'plan' must be a str, not int"),
    (lambda: validation.check_concurrency_limit("2"), TypeError, "limit must be an int or None, not str"),
    (lambda: validation.check_concurrency_limit(True), TypeError, "limit must be an int or None, not bool"),
    (
        lambda: validation.check_concurrency_limit(0),
        ValueError,
        f"limit must be between 1 and {COUNT}, got 0",
    ),
    (
        lambda: validation.check_concurrency_limit(COUNT + 1),
        ValueError,
        f"limit must be between 1 and {COUNT}, got {COUNT + 1}",
    ),
    (lambda: validation.check_max_backlog(-1), ValueError, f"limit must be between 0 and {COUNT}, got -1"),
    (lambda: validation.check_max_backlog(2.0), TypeError, "limit must be an int or None, not float"),
    (
        lambda: validation.check_rate_limit("10/s", burst=0),
        ValueError,
        f"burst must be between 1 and {COUNT}, got 0",
    ),
    (lambda: validation.check_rate_limit("10/s", burst="2"), TypeError, "burst must be an int, not str"),
    (lambda: validation.check_rate_limit(None, burst=None), TypeError, "burst must be an int, not NoneType"),
    (
        lambda: validation.check_rate_limit(10),
        TypeError,
        "rate must be a str such as '10/s' or None, not int",
    ),
    (
        lambda: validation.check_rate_limit("10/d"),
        ValueError,
        "rate must be '<number>/s', '/m' or '/h', got '10/d'",
    ),
    (lambda: validation.check_rate_limit("x/s"), ValueError, "rate must start with a number, got 'x/s'"),
    (
        lambda: validation.check_rate_limit("0/s"),
        ValueError,
        "rate must be between one call a year and 1000000/s, got '0/s'",
    ),
    (
        lambda: validation.check_rate_limit(f"{validation.MIN_RATE / 2!r}/s"),
        ValueError,
        f"rate must be between one call a year and 1000000/s, got '{validation.MIN_RATE / 2!r}/s'",
    ),
    (
        lambda: validation.check_rate_limit("inf/h"),
        ValueError,
        "rate must be between one call a year and 1000000/s, got 'inf/h'",
    ),
    (
        lambda: validation.check_rate_limit("2000000"),
        ValueError,
        "rate must be between one call a year and 1000000/s, got '2000000'",
    ),
    (
        lambda: validation.check_rate_limit(5, name="default_rate_limit"),
        TypeError,
        "default_rate_limit must be a str such as '10/s' or None, not int",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES, ids=[case[2] for case in CASES])
def test_the_whole_message(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        call()
    assert type(raised.value) is error
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: validation.check_delay(0), None),
        (lambda: validation.check_delay(None), None),
        (lambda: validation.check_delay(2), 2.0),
        (lambda: validation.check_cost(None), None),
        (lambda: validation.check_cost(0), 0.0),
        (lambda: validation.check_cost(validation.MAX_EXPIRY), validation.MAX_EXPIRY),
        (lambda: validation.check_cost_mode("calls"), None),
        (lambda: validation.check_cost_mode("runtime"), RuntimeCost()),
        (lambda: validation.check_cost_mode(RuntimeCost(0.5)), RuntimeCost(0.5)),
        (lambda: validation.check_timeout(None), None),
        (lambda: validation.check_timeout(0), 0.0),
        (lambda: validation.check_concurrency_limit(None), None),
        (lambda: validation.check_concurrency_limit(1), 1),
        (lambda: validation.check_concurrency_limit(COUNT), COUNT),
        (lambda: validation.check_max_backlog(0), 0),
        (lambda: validation.check_max_backlog(None), None),
        (lambda: validation.check_rate_limit(None), None),
        (lambda: validation.check_rate_limit("10"), RateLimit(10.0, 1, "10")),
        (lambda: validation.check_rate_limit(" 90 / m ", burst=3), RateLimit(1.5, 3, "90 / m")),
        (lambda: validation.check_rate_limit("0.5/s"), RateLimit(0.5, 1, "0.5/s")),
        (lambda: validation.check_rate_limit("3600/h"), RateLimit(1.0, 1, "3600/h")),
        (lambda: validation.check_rate_limit("1000000/s"), RateLimit(1e6, 1, "1000000/s")),
        (lambda: validation.check_rate_limit("1/s", burst=COUNT), RateLimit(1.0, COUNT, "1/s")),
        (lambda: validation.check_rate_limit(ONE_A_YEAR), RateLimit(validation.MIN_RATE, 1, ONE_A_YEAR)),
    ],
)
def test_the_value_a_good_argument_gives(call: Callable[[], Any], expected: Any) -> None:
    assert call() == expected
