"""ranch_core.backlogs: the declaration rules both adapters apply."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from ranch_core import InMemoryStorage, LRUKeyMetadata
from ranch_core.backlogs import (
    BacklogSettings,
    check_backlog_name,
    check_join,
    check_storage_unshared,
    check_weight_function,
    redis_storage_class,
)
from ranch_core.errors import BacklogConflict, MissingExtra, RanchError


def weights(key: str, meta: LRUKeyMetadata) -> float:
    return 1.0


def other_weights(key: str, meta: LRUKeyMetadata) -> float:
    return 2.0


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("", ValueError, "backlog must not be empty"),
        (3, TypeError, "backlog must be a str"),
        ("a{b", ValueError, "backlog must not contain"),
        ("a}b", ValueError, "backlog must not contain"),
    ],
)
def test_bad_backlog_names(name: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        check_backlog_name(name)
    assert check_backlog_name("emails") == "emails"


def test_weight_function_must_be_callable() -> None:
    check_weight_function(None)
    check_weight_function(weights)
    with pytest.raises(TypeError, match="weight_function must be callable"):
        check_weight_function(1.0)


def test_joining_with_nothing_set_or_the_same_settings_is_fine() -> None:
    storage = InMemoryStorage()
    existing = BacklogSettings("b", queue="q", storage=storage, weight_function=weights)
    check_join(existing, BacklogSettings("b"), who="task t2")
    check_join(existing, BacklogSettings("b", queue="q", storage=storage, weight_function=weights), who="t")


@pytest.mark.parametrize(
    ("joining", "message"),
    [
        (BacklogSettings("b", queue="other"), "on queue 'other'"),
        (BacklogSettings("b", storage=InMemoryStorage()), "with another storage"),
        (BacklogSettings("b", weight_function=other_weights), "with another weight_function"),
    ],
)
def test_contradicting_joins_are_refused(joining: BacklogSettings, message: str) -> None:
    existing = BacklogSettings("b", queue="q", storage=InMemoryStorage(), weight_function=weights)
    with pytest.raises(BacklogConflict, match=message) as caught:
        check_join(existing, joining, who="task t2")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RanchError)
    assert "task t2" in str(caught.value) and "'b'" in str(caught.value)


def test_one_storage_never_holds_two_backlogs() -> None:
    storage = InMemoryStorage()
    check_storage_unshared("b", storage, [("b", storage), ("c", InMemoryStorage())])
    with pytest.raises(BacklogConflict, match="already holds backlog 'c'"):
        check_storage_unshared("b", storage, [("c", storage)])


def test_redis_storage_class_or_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from ranch_redis import RedisStorage

    assert redis_storage_class("ranch-celery[redis]") is RedisStorage
    monkeypatch.setitem(sys.modules, "ranch_redis", None)  # as if it were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'ranch-dramatiq\[redis\]'") as caught:
        redis_storage_class("ranch-dramatiq[redis]")
    assert isinstance(caught.value, ImportError)
