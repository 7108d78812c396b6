"""Celery's ``apply_async`` options for a stored call: which apply, what they store, which refuse.

:func:`prepare_options` checks the options of one ``lru_apply_async`` (or of
a Ranch signature applied by Celery's canvas) before anything is stored and
turns them into :class:`Prepared`: what goes into the stored call (the parts
of a Celery message a worker's ``self.request`` is built from: callbacks,
errbacks, chain, chord, group, time limits, shadow, ...), the call's task
id, its Ranch expiry, its delay (``countdown``/``eta``: a delayed call,
stored now and runnable at its time) and the queue that picks its backlog.
An option that cannot apply to a stored call raises ``TypeError`` naming it.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import attrs
from ranch_core.calls import optional_str

#: Options with their Celery meaning (the README's "Celery features with Ranch" table).
SUPPORTED = (
    "task_id",
    "headers",
    "expires",
    "countdown",
    "eta",
    "link",
    "link_error",
    "time_limit",
    "soft_time_limit",
    "shadow",
    "queue",
    "ignore_result",
    "add_to_parent",
    "argsrepr",
    "kwargsrepr",
)
#: Options Celery's canvas and worker pass when they apply a signature (also accepted from users).
CANVAS = (
    "chain",
    "chord",
    "group_id",
    "group_index",
    "root_id",
    "parent_id",
    "reply_to",
    "stamped_headers",
    "replaced_task_nesting",
)
#: Accepted and unused: the call is stored, not published (wake-ups use Celery's own producers).
UNUSED = ("producer", "publisher", "connection")
#: Refused: meaningless for a call that waits in a fair backlog, with the reason.
REFUSED = {
    "priority": "the fair order decides when a stored call runs, not a broker priority",
    "routing_key": "a stored call's wake-ups follow its backlog's queue; pick the backlog with queue=",
    "exchange": "a stored call's wake-ups follow its backlog's queue; pick the backlog with queue=",
    "exchange_type": "a stored call's wake-ups follow its backlog's queue; pick the backlog with queue=",
    "serializer": "the backlog's storage serializer encodes the call (setting ranch_serializer)",
    "compression": "the call is stored, not sent as a broker message",
    "retry": "the call is stored in one storage step (setting ranch_redis_max_retries), not published",
    "retry_policy": "the call is stored in one storage step (setting ranch_redis_max_retries), not published",
}


@attrs.frozen
class Prepared:
    """The checked options of one call."""

    #: Stored with the call: the parts of its worker-side ``self.request``.
    stored: Dict[str, Any]
    task_id: Optional[str]
    #: Ranch's expiry in seconds (``expires=`` or ``expiry=``), ``None``: never.
    expiry: Optional[float]
    #: Seconds until the call may run (``countdown=`` or ``eta=``), ``None``: at once.
    delay: Optional[float]
    #: The queue whose backlog the call joins (``None``: the task's own backlog).
    queue: Optional[str]
    add_to_parent: bool


def prepare_options(
    options: Mapping[str, Any],
    expiry: Optional[float] = None,
    now: Optional[datetime.datetime] = None,
    timezone: Optional[datetime.tzinfo] = None,
) -> Prepared:
    """Check ``options`` (Celery's names) and ``expiry`` (Ranch's); nothing is stored or published.

    ``timezone`` is the app's (``app.timezone``): a naive ``eta`` is read in
    it, as Celery's worker reads it (default UTC).
    """
    # As in Celery's Signature.apply_async, options set to None are dismissed.
    opts = {name: value for name, value in options.items() if value is not None}
    stamps = _stamps(opts)
    _refuse_unknown(opts)
    stored: Dict[str, Any] = {}
    headers = opts.get("headers")
    if headers is not None:
        stored["headers"] = _headers(headers)
    if stamps:
        stored["stamped_headers"] = sorted(stamps)
        stored["stamps"] = stamps
    if "expires" in opts:
        if expiry is not None:
            raise TypeError(
                "give expires= (Celery's name) or expiry= (Ranch's), not both: they are the same limit"
            )
        expiry = expires_seconds(opts["expires"], now)
    if "countdown" in opts and "eta" in opts:
        raise TypeError("give countdown= or eta=, not both: they set the same moment")
    delay: Optional[float] = None
    if "countdown" in opts:
        delay = countdown_seconds(opts["countdown"])
    elif "eta" in opts:
        delay = eta_seconds(opts["eta"], timezone or datetime.timezone.utc, now)
    for option, name in (("link", "callbacks"), ("link_error", "errbacks")):
        if option in opts:
            stored[name] = signatures(opts[option], option)
    if "chain" in opts:
        stored["chain"] = signatures(opts["chain"], "chain")
    if "chord" in opts:
        stored["chord"] = signatures(opts["chord"], "chord")[0]
    limits = time_limits(opts.get("time_limit"), opts.get("soft_time_limit"))
    if limits is not None:
        stored["timelimit"] = limits
    for option, name in (
        ("shadow", "shadow"),
        ("group_id", "group"),
        ("root_id", "root_id"),
        ("parent_id", "parent_id"),
        ("reply_to", "reply_to"),
        ("argsrepr", "argsrepr"),
        ("kwargsrepr", "kwargsrepr"),
    ):
        if option in opts:
            stored[name] = _string(opts[option], option)
    for option in ("group_index", "replaced_task_nesting"):
        if option in opts:
            stored[option] = _count(opts[option], option)
    if "ignore_result" in opts:
        stored["ignore_result"] = _flag(opts["ignore_result"], "ignore_result")
    queue = opts.get("queue")
    return Prepared(
        stored=stored,
        task_id=optional_str(opts.get("task_id"), "task_id"),
        expiry=expiry,
        delay=delay or None,
        queue=None if queue is None else queue_name(queue),
        add_to_parent=_flag(opts.get("add_to_parent", True), "add_to_parent"),
    )


def _refuse_unknown(opts: Mapping[str, Any]) -> None:
    for name in sorted(opts):
        if name in REFUSED:
            raise TypeError(f"lru_apply_async does not support {name}=: {REFUSED[name]}")
    unknown = sorted(set(opts) - set(SUPPORTED) - set(CANVAS) - set(UNUSED))
    if unknown:
        raise TypeError(
            f"lru_apply_async does not support {', '.join(unknown)} "
            f"(supported: {', '.join(SUPPORTED)}, priority_weight, expiry, tags; set by Celery's "
            f"canvas: {', '.join(CANVAS)})"
        )


def _stamps(opts: Dict[str, Any]) -> Dict[str, Any]:
    """Pop the stamps Celery's canvas stamping put beside ``stamped_headers``."""
    names = opts.pop("stamped_headers", None)
    if names is None:
        return {}
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple, set)):
        raise TypeError(f"stamped_headers must be a list of option names, not {names!r:.80}")
    return {str(name): opts.pop(name, None) for name in names}


def _headers(headers: Any) -> Dict[str, Any]:
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
    for name in headers:
        if not isinstance(name, str):
            raise TypeError(f"headers must have str keys, not a {type(name).__name__} key")
    return dict(headers)


def expires_seconds(expires: Any, now: Optional[datetime.datetime] = None) -> float:
    """Celery's ``expires`` (seconds, ``datetime`` or ISO 8601 string) as seconds from now.

    A moment already past gives 0 (the call expires unless a worker takes it
    at once), as Celery sets a past expiry to 0.
    """
    if isinstance(expires, str):
        try:
            expires = datetime.datetime.fromisoformat(expires)
        except ValueError:
            raise ValueError(
                f"expires must be seconds, a datetime or an ISO 8601 string, not {expires!r}"
            ) from None
    if isinstance(expires, datetime.datetime):
        if now is None:
            now = datetime.datetime.now(expires.tzinfo) if expires.tzinfo else datetime.datetime.now()
        return max(0.0, (expires - now).total_seconds())
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or not math.isfinite(expires):
        raise TypeError(f"expires must be seconds, a datetime or an ISO 8601 string, not {expires!r:.80}")
    if expires < 0:
        raise ValueError(f"expires must be >= 0 seconds, not {expires!r}")
    return float(expires)


def countdown_seconds(countdown: Any) -> float:
    """Celery's ``countdown``: seconds from now (a past moment, < 0, runs at once)."""
    if isinstance(countdown, bool) or not isinstance(countdown, (int, float)) or not math.isfinite(countdown):
        raise TypeError(f"countdown must be a number of seconds, not {countdown!r:.80}")
    return max(0.0, float(countdown))


def eta_seconds(eta: Any, timezone: datetime.tzinfo, now: Optional[datetime.datetime] = None) -> float:
    """Celery's ``eta`` (``datetime`` or ISO 8601 string; naive: in ``timezone``) as seconds from now.

    A moment already past gives 0: the call may run at once, as in Celery.
    """
    moment: datetime.datetime
    if isinstance(eta, str):
        try:
            moment = datetime.datetime.fromisoformat(eta)
        except ValueError:
            raise ValueError(f"eta must be a datetime or an ISO 8601 string, not {eta!r:.80}") from None
    elif isinstance(eta, datetime.datetime):
        moment = eta
    else:
        raise TypeError(f"eta must be a datetime or an ISO 8601 string, not {eta!r:.80}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone)
    return max(0.0, (moment - now).total_seconds())


def signatures(value: Any, option: str) -> List[Dict[str, Any]]:
    """``link``/``link_error``/``chain``/``chord`` as a list of signature dicts (``TypeError`` if not)."""
    items: Sequence[Any] = value if isinstance(value, (list, tuple)) else [value]
    checked: List[Dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("task"), str):
            raise TypeError(f"{option} must be a Celery signature or a list of signatures, not {item!r:.80}")
        checked.append(dict(item))
    if not checked and option == "chord":
        raise TypeError("chord must be a Celery signature")
    return checked


def time_limits(hard: Any, soft: Any) -> Optional[List[Optional[float]]]:
    """``[time_limit, soft_time_limit]`` (Celery's ``timelimit`` header), checked; ``None`` if neither."""
    if hard is None and soft is None:
        return None
    checked: List[Optional[float]] = []
    for value, name in ((hard, "time_limit"), (soft, "soft_time_limit")):
        if value is None:
            checked.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name} must be a number of seconds, not {value!r:.80}")
        if value <= 0:
            raise ValueError(f"{name} must be > 0 seconds, not {value!r}")
        checked.append(float(value))
    if checked[0] is not None and checked[1] is not None and checked[1] > checked[0]:
        raise ValueError("soft_time_limit must be less than or equal to time_limit")
    return checked


def queue_name(queue: Any) -> str:
    """The name of ``queue=`` (a name or a ``kombu.Queue``)."""
    name = getattr(queue, "name", queue)
    if not isinstance(name, str) or not name:
        raise TypeError(f"queue must be a queue name or a kombu.Queue, not {queue!r:.80}")
    return name


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name} must be an int >= 0, not {value!r:.80}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r:.80}")
    return value
