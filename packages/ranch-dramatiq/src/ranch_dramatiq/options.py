"""Dramatiq's message options for a stored call: which apply, which are checked, which refuse.

A stored call runs as its own message (:mod:`ranch_dramatiq.execution`), so
every middleware reads its options exactly as for a message the broker
delivered: the options a middleware declares (``broker.actor_options``) and
the ones Dramatiq's composition sets apply to a Ranch call with Dramatiq's
meaning. :func:`check_options` checks them before anything is stored and
refuses, with a ``TypeError`` naming it, an option that cannot apply to a
call waiting in a fair backlog (the README's "Dramatiq features with Ranch").

A *Ranch message* (``actor.lru_message``) carries its key and Ranch settings
in its options (:data:`RANCH_OPTIONS`), so that it stays a Ranch message
through ``Message.copy``, ``Message.asdict`` (a pipeline's ``pipe_target``,
a group's completion callbacks) and encoding: :func:`ranch_settings` reads
them back where the message is enqueued. A pair key ``(group, member)``
travels there as a list once the message is encoded (JSON), and is read
back as a tuple.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import attrs
from dramatiq import Actor, Message
from ranch_core import validation
from ranch_core.keys import Key

#: Options with Dramatiq's meaning, checked here (the README's table).
SUPPORTED = (
    "max_retries",
    "min_backoff",
    "max_backoff",
    "throws",
    "on_retry_exhausted",
    "time_limit",
    "max_age",
    "notify_shutdown",
    "store_results",
    "result_ttl",
    "on_success",
    "on_failure",
    "pipe_target",
    "pipe_ignore",
)
#: Options Dramatiq itself sets on a message (composition, Retries), accepted as they come.
SET_BY_DRAMATIQ = (
    "group_completion_uuid",
    "group_completion_callbacks",
    "retries",
    "traceback",
    "requeue_timestamp",
)
#: Refused: meaningless for a call that waits in a fair backlog, with the reason.
REFUSED = {
    "retry_when": "Dramatiq's Retries reads retry_when from the actor's options only, never from a "
    "message: declare it on the actor",
    "broker_priority": "the fair order decides when a stored call runs, not a broker priority",
    "redis_message_id": "the call is stored, not published by the RedisBroker",
    "eta": "the broker sets eta on a delayed message; delay a stored call with delay= (milliseconds)",
    "delay": "a message's delay is given where it is enqueued, as in Dramatiq: "
    "lru_send_with_options(delay=), broker.enqueue(message, delay=), pipeline(...).run(delay=), "
    "group(...).run(delay=)",
}
#: Where a Ranch message keeps its key and Ranch settings (in ``Message.options``).
RANCH_OPTIONS = ("lru_key", "lru_priority_weight", "lru_expiry", "lru_tags")
_CALLBACKS = ("on_success", "on_failure", "on_retry_exhausted")
_MILLISECONDS = ("min_backoff", "max_backoff", "time_limit", "max_age", "result_ttl", "requeue_timestamp")
_FLAGS = ("notify_shutdown", "store_results", "pipe_ignore")
_MESSAGE_FIELDS = ("queue_name", "actor_name", "args", "kwargs", "options")


@attrs.frozen
class RanchSettings:
    """Where and how a Ranch message is stored: its key and per-call settings."""

    key: Key
    priority_weight: Optional[float] = None
    expiry: Optional[float] = None
    tags: Optional[Tuple[Tuple[str, str], ...]] = None

    def as_options(self) -> Dict[str, Any]:
        """The message options that carry these settings (only those set)."""
        options: Dict[str, Any] = {"lru_key": self.key}
        if self.priority_weight is not None:
            options["lru_priority_weight"] = self.priority_weight
        if self.expiry is not None:
            options["lru_expiry"] = self.expiry
        if self.tags is not None:
            options["lru_tags"] = dict(self.tags)
        return options

    def tag_map(self) -> Optional[Dict[str, str]]:
        """The tags as a ``dict`` (``None``: none given)."""
        return None if self.tags is None else dict(self.tags)


def settings(key: Any, priority_weight: Any = None, expiry: Any = None, tags: Any = None) -> RanchSettings:
    """Checked Ranch settings (``TypeError``/``ValueError`` naming the bad one)."""
    checked_tags = None if tags is None else tuple(sorted(validation.check_tags(tags).items()))
    return RanchSettings(
        validation.check_any_key(key, "lru_key"),
        validation.check_optional_weight(priority_weight, "priority_weight"),
        validation.check_expiry(expiry),
        checked_tags,
    )


def ranch_settings(options: Mapping[str, Any]) -> Optional[RanchSettings]:
    """The Ranch settings a message's options carry; ``None`` for a plain message."""
    if options.get("lru_key") is None:
        return None
    get = options.get
    return settings(options["lru_key"], get("lru_priority_weight"), get("lru_expiry"), get("lru_tags"))


def without_ranch(options: Mapping[str, Any]) -> Dict[str, Any]:
    """``options`` without the Ranch settings: the stored call's message options."""
    return {name: value for name, value in options.items() if name not in RANCH_OPTIONS}


def check_options(
    options: Mapping[str, Any], declared: Iterable[str] = (), *, who: str = "lru_send_with_options"
) -> Dict[str, Any]:
    """Check Dramatiq message ``options`` for a stored call; return them normalized.

    ``declared`` are the broker's ``actor_options``: an option a third-party
    middleware declares is passed on unchecked (that middleware sees the call
    as its own message). Callback actors become their names, as in
    ``Actor.message_with_options``; a ``Message`` as ``pipe_target`` becomes
    its dict. Anything else raises ``TypeError``/``ValueError`` naming it.
    """
    checked: Dict[str, Any] = {}
    known = set(SUPPORTED) | set(SET_BY_DRAMATIQ)
    for name in sorted(options):
        value = options[name]
        if name in REFUSED:
            raise TypeError(f"{who} does not support {name}=: {REFUSED[name]}")
        if name in RANCH_OPTIONS:
            raise TypeError(f"{who}: {name} is set by Ranch: pass lru_key, priority_weight, expiry, tags")
        if name in known:
            checked[name] = _check(name, value)
        elif name in declared:
            checked[name] = value
        else:
            raise TypeError(
                f"{who} does not support the option {name!r}: no middleware of the broker declares it "
                f"(supported: {', '.join(SUPPORTED)}; set by Dramatiq: {', '.join(SET_BY_DRAMATIQ)})"
            )
    return checked


def delay_seconds(delay: Any) -> Optional[float]:
    """Dramatiq's ``delay`` (milliseconds, ``None``: none) as Ranch's delay in seconds (``None``: none)."""
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay):
        raise TypeError(f"delay must be a number of milliseconds, not {delay!r:.80}")
    if delay < 0:
        raise ValueError(f"delay must be >= 0 milliseconds, not {delay!r}")
    return validation.check_delay(delay / 1000.0)


def _check(name: str, value: Any) -> Any:
    if name in _CALLBACKS:
        return _callback(value, name)
    if name in _MILLISECONDS:
        return None if value is None else _count(value, name, "milliseconds")
    if name in _FLAGS:
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, not {value!r:.80}")
        return value
    if name in ("max_retries", "retries"):
        return None if value is None and name == "max_retries" else _count(value, name, "retries")
    if name == "throws":
        return _throws(value)
    if name == "pipe_target":
        return None if value is None else message_dict(value, name)
    if name == "group_completion_callbacks":
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of message dicts, not {value!r:.80}")
        return [message_dict(item, name) for item in value]
    if not isinstance(value, str):  # group_completion_uuid, traceback
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _callback(value: Any, name: str) -> Optional[str]:
    if isinstance(value, Actor):
        return value.actor_name
    if value is None or (isinstance(value, str) and value):
        return value
    raise TypeError(f"{name} must be an actor or an actor's name, not {value!r:.80}")


def _count(value: Any, name: str, unit: str) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of {unit}, not {value!r:.80}")
    count: int = value
    if count < 0:
        raise ValueError(f"{name} must be >= 0 {unit}, not {value!r}")
    return count


def _throws(value: Any) -> Any:
    classes = value if isinstance(value, tuple) else (value,)
    for item in classes:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"throws must be an exception class or a tuple of them, not {value!r:.80}")
    return value


def message_dict(value: Any, name: str) -> Dict[str, Any]:
    """A message as ``Message.asdict()`` gives it (a ``Message`` is converted), checked."""
    if isinstance(value, Message):
        return value.asdict()
    if not isinstance(value, Mapping) or any(field not in value for field in _MESSAGE_FIELDS):
        raise TypeError(f"{name} must be a dramatiq Message or Message.asdict(), not {value!r:.80}")
    if not isinstance(value["options"], Mapping):
        raise TypeError(f"{name} must be a dramatiq Message or Message.asdict(), not {value!r:.80}")
    return dict(value)
