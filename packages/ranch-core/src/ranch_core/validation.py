"""Checks every public entry point runs before anything is stored.

Each check raises ``TypeError`` for a value of the wrong type and
``ValueError`` for a value of the right type that is out of range, with a
message naming the argument.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from ranch_core.algorithm import MAX_WEIGHT, MIN_WEIGHT
from ranch_core.keys import Key
from ranch_core.models import RateLimit, RuntimeCost

#: Longest expiry accepted, in seconds (10 years); ``None`` means never.
MAX_EXPIRY = 10 * 365.25 * 86400.0
#: Largest concurrency limit, burst and backlog limit accepted (a bound that
#: keeps every count an exact double and a Redis integer).
MAX_COUNT = 2**40
#: Seconds per unit of Celery's rate syntax (``"10/s"``, ``"100/m"``, ``"1000/h"``).
RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: Fastest rate accepted, in calls per second.
MAX_RATE = 1e6
#: Slowest rate accepted: one call a year.
MIN_RATE = 1 / (365.25 * 86400.0)


def check_key(key: Any, name: str = "key") -> str:
    """A one-level key is a non-empty string that encodes to UTF-8."""
    if not isinstance(key, str):
        if isinstance(key, (tuple, list)):
            raise TypeError(
                f"{name} must be a str here, not a {type(key).__name__}: two-level "
                "(group, member) keys are not taken here"
            )
        raise TypeError(f"{name} must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError(f"{name} must not be empty")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid UTF-8 text: {exc.reason}") from None
    return key


def check_any_key(key: Any, name: str = "key") -> Key:
    """A key of either shape (:mod:`ranch_core.keys`): a one-level key, or a
    pair ``(group, member)`` of one-level keys (a list of two, as JSON
    carries a pair, becomes a tuple)."""
    if isinstance(key, str):
        return check_key(key, name)
    if not isinstance(key, (tuple, list)):
        raise TypeError(f"{name} must be a str or a (group, member) pair, not {type(key).__name__}")
    if len(key) != 2:
        raise ValueError(f"{name} must be a (group, member) pair: 2 items, not {len(key)}")
    group, member = key
    for part, what in ((group, "group"), (member, "member")):
        if not isinstance(part, str):
            raise TypeError(f"{name}'s {what} must be a str, not {type(part).__name__}")
        check_key(part, f"{name}'s {what}")
    return (group, member)


def _check_number(value: Any, name: str, allowed: str = "a finite number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the range of a double, e.g. 10**400
        raise ValueError(f"{name} must be {allowed}, got an int too large for a float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def check_weight(weight: Any, name: str = "weight") -> float:
    """A weight is a finite number in ``[MIN_WEIGHT, MAX_WEIGHT]`` (0.001 to 1000)."""
    allowed = f"between {MIN_WEIGHT} and {MAX_WEIGHT}"
    number = _check_number(weight, name, allowed)
    if not MIN_WEIGHT <= number <= MAX_WEIGHT:
        raise ValueError(f"{name} must be {allowed}, got {weight!r}")
    return number


def check_optional_weight(weight: Any, name: str = "weight") -> Optional[float]:
    """``None`` (keep the stored weight) or a valid weight."""
    return None if weight is None else check_weight(weight, name)


def check_expiry(expiry: Any, name: str = "expiry") -> Optional[float]:
    """Expiry is ``None`` (never) or a finite number of seconds in ``[0, MAX_EXPIRY]``."""
    if expiry is None:
        return None
    number = _check_number(expiry, name, f"between 0 and {MAX_EXPIRY:.0f} seconds (10 years)")
    if number < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {expiry!r}")
    if number > MAX_EXPIRY:
        raise ValueError(
            f"{name} must be at most {MAX_EXPIRY:.0f} seconds (10 years), got {expiry!r}; "
            "use None for a call that never expires"
        )
    return number


def check_delay(delay: Any, name: str = "delay") -> Optional[float]:
    """A delay is ``None`` or ``0`` (at once; both give ``None``) or a finite
    number of seconds in ``(0, MAX_EXPIRY]``."""
    checked = check_expiry(delay, name)
    return checked if checked else None


def check_cost(cost: Any, name: str = "cost") -> Optional[float]:
    """A measured run time: ``None`` (the storage measures it) or a finite
    number of seconds in ``[0, MAX_EXPIRY]``."""
    if cost is None:
        return None
    number = _check_number(cost, name, f"between 0 and {MAX_EXPIRY:.0f} seconds (10 years)")
    if not 0 <= number <= MAX_EXPIRY:
        raise ValueError(f"{name} must be between 0 and {MAX_EXPIRY:.0f} seconds (10 years), got {cost!r}")
    return number


def check_cost_mode(cost: Any, name: str = "cost") -> Optional[RuntimeCost]:
    """What a dispatch costs: ``"calls"`` (its weight; gives ``None``),
    ``"runtime"`` (its run time times its weight; gives ``RuntimeCost()``)
    or a :class:`~ranch_core.models.RuntimeCost`."""
    if isinstance(cost, RuntimeCost):
        return cost
    if not isinstance(cost, str):
        raise TypeError(f"{name} must be 'calls', 'runtime' or a RuntimeCost, not {type(cost).__name__}")
    if cost == "calls":
        return None
    if cost == "runtime":
        return RuntimeCost()
    raise ValueError(f"{name} must be 'calls' or 'runtime', not {cost!r}")


def check_lease(lease_seconds: Any) -> float:
    """A lease lasts a finite, positive number of seconds."""
    number = _check_number(lease_seconds, "lease_seconds")
    if number <= 0:
        raise ValueError(f"lease_seconds must be greater than 0, got {lease_seconds!r}")
    return number


def check_timeout(timeout: Any, name: str = "timeout") -> Optional[float]:
    """How long a pop may wait: ``None`` (no limit) or finite seconds ``>= 0``."""
    if timeout is None:
        return None
    number = _check_number(timeout, name)
    if number < 0:
        raise ValueError(f"{name} must be >= 0 seconds or None, got {timeout!r}")
    return number


def check_limit(limit: Any, name: str = "limit") -> int:
    """A batch size: an ``int`` >= 1."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"{name} must be an int, not {type(limit).__name__}")
    if limit < 1:
        raise ValueError(f"{name} must be >= 1, got {limit!r}")
    return limit


def check_name(value: Any, name: str) -> str:
    """Tag names, custom-data names and task ids: non-empty strings."""
    return check_key(value, name)


def check_tag_value(value: Any, name: str = "tag value") -> str:
    """Tag values are strings (possibly empty)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid UTF-8 text: {exc.reason}") from None
    return value


def check_tags(tags: Any, name: str = "tags") -> Dict[str, str]:
    """``None`` (no tags) or a mapping of non-empty tag names to string values; a new dict."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"{name} must be a mapping of str to str, not {type(tags).__name__}")
    return {
        check_name(tag, "tag name"): check_tag_value(value, f"tag {tag!r}") for tag, value in tags.items()
    }


def _check_count(value: Any, name: str, smallest: int, optional: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not smallest <= value <= MAX_COUNT:
        raise ValueError(f"{name} must be between {smallest} and {MAX_COUNT}, got {value!r}")
    return value


def check_concurrency_limit(limit: Any, name: str = "limit") -> Optional[int]:
    """A concurrency limit: ``None`` (no setting) or an ``int`` >= 1."""
    return None if limit is None else _check_count(limit, name, 1)


def check_max_backlog(limit: Any, name: str = "limit") -> Optional[int]:
    """A backlog limit: ``None`` (no limit) or an ``int`` >= 0 (0 refuses every push)."""
    return None if limit is None else _check_count(limit, name, 0)


def check_rate_limit(rate: Any, burst: Any = 1, name: str = "rate") -> Optional[RateLimit]:
    """Celery's rate syntax: ``"<number>/<s|m|h>"`` (``"10/s"``, ``"100/m"``,
    ``"0.5/s"``, ``"1000/h"``; a bare ``"10"`` is per second), or ``None``
    (no setting). ``burst`` is an ``int`` >= 1: calls allowed at once after a
    quiet spell. Returns the :class:`~ranch_core.models.RateLimit`."""
    burst = _check_count(burst, "burst", 1, optional=False)
    if rate is None:
        return None
    if not isinstance(rate, str):
        raise TypeError(f"{name} must be a str such as '10/s' or None, not {type(rate).__name__}")
    count, _, unit = rate.strip().partition("/")
    unit = unit.strip() or "s"
    if unit not in RATE_UNITS:
        raise ValueError(f"{name} must be '<number>/s', '/m' or '/h', got {rate!r}")
    try:
        number = float(count)
    except ValueError:
        raise ValueError(f"{name} must start with a number, got {rate!r}") from None
    per_second = number / RATE_UNITS[unit]
    if not math.isfinite(per_second) or not MIN_RATE <= per_second <= MAX_RATE:
        raise ValueError(f"{name} must be between one call a year and {MAX_RATE:.0f}/s, got {rate!r}")
    return RateLimit(per_second, burst, rate.strip())
