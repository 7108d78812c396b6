"""ranch-celery and ranch-dramatiq apply the same rules, from ranch_core, to the same input.

Every case runs through both adapters: Celery with ``ranch_celery.lru_task``
on a ``memory://`` broker, Dramatiq with ``ranch_dramatiq.lru_actor`` on a
``StubBroker`` (both with their in-memory storage). Each expects the same
exception type and a message naming the same argument, and nothing stored
or published; the good cases expect the call stored by both.
"""

from __future__ import annotations

import itertools
import math
import types
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, Type

import celery
import pytest
from dramatiq.brokers.stub import StubBroker
from ranch_celery import lru_task
from ranch_core.errors import BacklogConflict, RanchError
from ranch_dramatiq import Ranch, lru_actor

_names = itertools.count()


class ReadOnlyKwargs(Mapping[str, Any]):
    """A ``Mapping`` that is not a ``dict`` (as an application might pass for kwargs)."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def work(*args: Any, **kwargs: Any) -> None:
    """The function both adapters wrap."""


def weigh(key: str, metadata: Any) -> float:
    return 1.0


def weigh_otherwise(key: str, metadata: Any) -> float:
    return 2.0


class CeleryAdapter:
    """``lru_task`` on a Celery app with a ``memory://`` broker."""

    name = "celery"

    def __init__(self) -> None:
        self.app = celery.Celery(f"agree{next(_names)}", broker="memory://")

    def declare(self, **options: Any) -> Any:
        return lru_task(self.app, name=f"agree.work{next(_names)}", **options)(work)

    def send(self, task: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        return task.lru_delay(key, *args, **kwargs)

    def send_with(self, task: Any, key: Any, args: Any, kwargs: Any) -> Any:
        return task.lru_apply_async(key, args, kwargs)

    def stored(self, task: Any) -> int:
        return int(task.get_system_status()["backlog_size"])

    def close(self) -> None:
        self.app.close()


class DramatiqAdapter:
    """``lru_actor`` on a ``StubBroker`` with the ``Ranch`` middleware."""

    name = "dramatiq"

    def __init__(self) -> None:
        self.broker = StubBroker()
        self.broker.add_middleware(Ranch())

    def declare(self, **options: Any) -> Any:
        return lru_actor(broker=self.broker, actor_name=f"work{next(_names)}", **options)(work)

    def send(self, actor: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        return actor.lru_send(key, *args, **kwargs)

    def send_with(self, actor: Any, key: Any, args: Any, kwargs: Any) -> Any:
        return actor.lru_send_with_options(key, args=args, kwargs=kwargs)

    def stored(self, actor: Any) -> int:
        return int(actor.get_system_status()["backlog_size"])

    def close(self) -> None:
        self.broker.close()


@pytest.fixture(params=[CeleryAdapter, DramatiqAdapter], ids=lambda cls: cls.name)
def adapter(request: Any) -> Iterator[Any]:
    made = request.param()
    yield made
    made.close()


Send = Callable[[Any, Any], Any]

#: Bad calls: id -> (how to send with adapter ``a`` to task ``t``, exception, regex the message must match).
BAD_CALLS: Dict[str, Tuple[Send, Type[BaseException], str]] = {
    "kwargs with a non-str key": (lambda a, t: a.send_with(t, "k", (), {1: "x"}), TypeError, "kwargs"),
    "kwargs not a mapping": (lambda a, t: a.send_with(t, "k", (), [("a", 1)]), TypeError, "kwargs"),
    "args as a str": (lambda a, t: a.send_with(t, "k", "abc", None), TypeError, "args"),
    "args as bytes": (lambda a, t: a.send_with(t, "k", b"abc", None), TypeError, "args"),
    "args as a dict": (lambda a, t: a.send_with(t, "k", {"a": 1}, None), TypeError, "args"),
    "argument the encoder refuses": (
        lambda a, t: a.send(t, "k", 1, object()),
        TypeError,
        r"argument 2 \(args\[1\]\) of type object cannot be encoded",
    ),
    "keyword the encoder refuses": (
        lambda a, t: a.send(t, "k", when=object()),
        TypeError,
        r"keyword 'when' of type object cannot be encoded",
    ),
    "empty lru_key": (lambda a, t: a.send(t, ""), ValueError, "lru_key"),
    "lru_key not a str": (lambda a, t: a.send(t, 7), TypeError, "lru_key"),
    "lru_key None": (lambda a, t: a.send(t, None), TypeError, "lru_key"),
    "lru_key a pair of three": (lambda a, t: a.send(t, ("g", "m", "x")), ValueError, "lru_key"),
    "lru_key a pair with an empty member": (lambda a, t: a.send(t, ("g", "")), ValueError, "lru_key"),
    "lru_key a pair with an empty group": (lambda a, t: a.send(t, ("", "m")), ValueError, "lru_key"),
    "lru_key a pair with a non-str member": (lambda a, t: a.send(t, ("g", 1)), TypeError, "lru_key"),
    "lru_key a dict": (lambda a, t: a.send(t, {"g": "m"}), TypeError, "lru_key"),
    "weight zero": (lambda a, t: a.send(t, "k", priority_weight=0), ValueError, "priority_weight"),
    "weight negative": (lambda a, t: a.send(t, "k", priority_weight=-1.5), ValueError, "priority_weight"),
    "weight nan": (lambda a, t: a.send(t, "k", priority_weight=math.nan), ValueError, "priority_weight"),
    "weight inf": (lambda a, t: a.send(t, "k", priority_weight=math.inf), ValueError, "priority_weight"),
    "weight huge": (lambda a, t: a.send(t, "k", priority_weight=10**400), ValueError, "priority_weight"),
    "weight a str": (lambda a, t: a.send(t, "k", priority_weight="1"), TypeError, "priority_weight"),
    "weight a bool": (lambda a, t: a.send(t, "k", priority_weight=True), TypeError, "priority_weight"),
    "expiry negative": (lambda a, t: a.send(t, "k", expiry=-1), ValueError, "expiry"),
    "expiry a str": (lambda a, t: a.send(t, "k", expiry="soon"), TypeError, "expiry"),
    "expiry huge": (lambda a, t: a.send(t, "k", expiry=10**400), ValueError, "expiry"),
    "tags a list": (lambda a, t: a.send(t, "k", tags=["plan"]), TypeError, "tags"),
    "tag value not a str": (lambda a, t: a.send(t, "k", tags={"plan": 3}), TypeError, "tag"),
    "empty tag name": (lambda a, t: a.send(t, "k", tags={"": "x"}), ValueError, "tag name"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_call_same_error_nothing_stored(adapter: Any, case: str) -> None:
    send, kind, pattern = BAD_CALLS[case]
    task = adapter.declare()
    with pytest.raises(kind, match=pattern):
        send(adapter, task)
    assert adapter.stored(task) == 0


GOOD_CALLS: Dict[str, Send] = {
    "kwargs as a non-dict Mapping": lambda a, t: a.send_with(t, "k", [1], ReadOnlyKwargs(x=2)),
    "kwargs as a MappingProxyType": lambda a, t: a.send_with(t, "k", (1,), types.MappingProxyType({"x": 2})),
    "kwargs None, args a list": lambda a, t: a.send_with(t, "k", [1, 2], None),
    "lru_key a (group, member) pair": lambda a, t: a.send(t, ("tenant", "user")),
    "lru_key a list of two (JSON's pair)": lambda a, t: a.send_with(t, ["tenant", "user"], (), None),
}


@pytest.mark.parametrize("case", list(GOOD_CALLS))
def test_good_call_stored_by_both(adapter: Any, case: str) -> None:
    task = adapter.declare()
    GOOD_CALLS[case](adapter, task)
    assert adapter.stored(task) == 1


#: Bad declarations: id -> (options of the first declaration or None, options of the second,
#: exception, regex). The first declaration must succeed; the second must fail.
BAD_DECLARATIONS: Dict[str, Tuple[Optional[Dict[str, Any]], Dict[str, Any], Type[BaseException], str]] = {
    "conflicting weight_function": (
        {"backlog": "shared", "weight_function": weigh},
        {"backlog": "shared", "weight_function": weigh_otherwise},
        BacklogConflict,
        "weight_function",
    ),
    "empty backlog name": (None, {"backlog": ""}, ValueError, "backlog"),
    "backlog name with a brace": (None, {"backlog": "a{b}"}, ValueError, "backlog"),
    "backlog name not a str": (None, {"backlog": 7}, TypeError, "backlog"),
    "weight_function not callable": (None, {"weight_function": 3}, TypeError, "weight_function"),
}


@pytest.mark.parametrize("case", list(BAD_DECLARATIONS))
def test_bad_declaration_same_error(adapter: Any, case: str) -> None:
    first, second, kind, pattern = BAD_DECLARATIONS[case]
    if first is not None:
        adapter.declare(**first)
    with pytest.raises(kind, match=pattern):
        adapter.declare(**second)


def test_conflict_is_a_value_error_and_a_ranch_error() -> None:
    assert issubclass(BacklogConflict, ValueError) and issubclass(BacklogConflict, RanchError)


def test_same_weight_function_joins(adapter: Any) -> None:
    first = adapter.declare(backlog="shared", weight_function=weigh)
    second = adapter.declare(backlog="shared", weight_function=weigh)
    adapter.send(first, "k")
    adapter.send(second, "k")
    assert adapter.stored(first) == adapter.stored(second) == 2
