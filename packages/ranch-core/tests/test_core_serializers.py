from __future__ import annotations

import pytest
from ranch_core import FairScheduler, InMemoryStorage, JSONSerializer, PickleSerializer, get_serializer


def test_json_is_the_default_and_round_trips_json_types() -> None:
    scheduler = FairScheduler()
    scheduler.push("k", {"args": (1, 2), "s": "é"})
    task = scheduler.pop()
    assert task is not None and task.payload == {"args": [1, 2], "s": "é"}


def test_pickle_only_by_name() -> None:
    assert isinstance(get_serializer("json"), JSONSerializer)
    assert isinstance(get_serializer("pickle"), PickleSerializer)
    scheduler = FairScheduler(InMemoryStorage(serializer="pickle"))
    scheduler.push("k", {1, 2})
    task = scheduler.pop()
    assert task is not None and task.payload == {1, 2}


def test_raw_objects_without_serializer() -> None:
    marker = object()
    scheduler = FairScheduler(InMemoryStorage(serializer=None))
    scheduler.push("k", marker)
    task = scheduler.pop()
    assert task is not None and task.payload is marker


@pytest.mark.parametrize(("spec", "error"), [("yaml", ValueError), (3, TypeError)])
def test_unknown_serializer(spec: object, error: type) -> None:
    with pytest.raises(error, match="serializer"):
        get_serializer(spec)  # type: ignore[arg-type]


def test_json_refuses_what_it_cannot_encode() -> None:
    for value in [object(), {1, 2}, float("nan"), b"bytes"]:
        with pytest.raises(TypeError, match="JSON"):
            JSONSerializer().dumps(value)
