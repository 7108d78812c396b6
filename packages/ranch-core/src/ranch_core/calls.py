"""A stored call: what an adapter puts in the backlog and gets back to run.

:class:`Call` is the JSON-ready form (arguments plus the adapter's options),
:class:`Claimed` a call taken for running, and :func:`check_arguments` the
one argument rule both adapters apply before anything is stored.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import attrs

from ranch_core import validation
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask


@attrs.frozen
class Call:
    """A stored call: positional and keyword arguments plus adapter options.

    ``options`` holds what the adapter needs to run the call as the user sent
    it (e.g. Celery's headers, Dramatiq's message options); ``retries`` counts
    earlier attempts. Everything must be encodable by the storage's serializer.
    """

    args: List[Any] = attrs.field(factory=list, converter=list)
    kwargs: Dict[str, Any] = attrs.field(factory=dict, converter=dict)
    options: Dict[str, Any] = attrs.field(factory=dict, converter=dict)
    retries: int = 0

    def to_payload(self) -> Dict[str, Any]:
        """The form stored in the backlog."""
        return {"args": self.args, "kwargs": self.kwargs, "options": self.options, "retries": self.retries}

    @classmethod
    def from_payload(cls, payload: Any) -> Call:
        """Rebuild a call; ``TypeError``/``ValueError`` if ``payload`` is not one."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"stored call is a {type(payload).__name__}, not a mapping")
        args, kwargs = payload.get("args", []), payload.get("kwargs", {})
        options, retries = payload.get("options", {}), payload.get("retries", 0)
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(options, dict):
            raise TypeError("stored call has malformed args, kwargs or options")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"stored call has a bad retry count {retries!r}")
        return cls(args=args, kwargs=kwargs, options=options, retries=retries)


@attrs.frozen
class Claimed:
    """A call taken for running: the leased task, its decoded call, and the
    wake-up token the worker holds while it runs (``None``: taken without one)."""

    task: ScheduledTask
    call: Call
    token: Optional[str] = None

    @property
    def task_id(self) -> str:
        """The call's id (the user's task or message id)."""
        return self.task.task_id

    @property
    def key(self) -> Key:
        """The key the call was stored under."""
        return self.task.key


def check_arguments(args: Any, kwargs: Any) -> Tuple[List[Any], Dict[str, Any]]:
    """The one argument rule of both adapters, checked before anything is stored.

    ``args`` is a list or tuple; ``kwargs`` is ``None`` or any mapping with
    ``str`` keys (as Celery's ``apply_async`` and Dramatiq's
    ``send_with_options`` take them). Returns plain copies.
    """
    if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
        raise TypeError(f"args must be a list or tuple, not {type(args).__name__}")
    if kwargs is None:
        return list(args), {}
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a mapping with str keys, not {type(kwargs).__name__}")
    for name in kwargs:
        if not isinstance(name, str):
            raise TypeError(f"kwargs must be a mapping with str keys, not a {type(name).__name__} key")
    return list(args), dict(kwargs)


def optional_str(value: Any, name: str) -> Optional[str]:
    """``None`` or a non-empty string (task ids, backlog names given by users)."""
    return None if value is None else validation.check_name(value, name)
