"""ranch_core.calls: the stored call and the one argument rule both adapters apply."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest
from ranch_core.calls import Call, check_arguments, optional_str


def test_arguments_accept_lists_tuples_and_any_str_keyed_mapping() -> None:
    assert check_arguments((1, 2), None) == ([1, 2], {})
    assert check_arguments([1], MappingProxyType({"a": 1})) == ([1], {"a": 1})
    args, kwargs = check_arguments([], OrderedDict(b=2))
    assert type(args) is list and type(kwargs) is dict and kwargs == {"b": 2}


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ("abc", None, "args must be a list or tuple, not str"),
        (b"abc", None, "args must be a list or tuple, not bytes"),
        ({1}, None, "args must be a list or tuple, not set"),
        ((), [("a", 1)], "kwargs must be a mapping with str keys, not list"),
        ((), {1: "x"}, "kwargs must be a mapping with str keys, not a int key"),
    ],
)
def test_bad_arguments_name_the_argument(args: Any, kwargs: Any, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        check_arguments(args, kwargs)


def test_optional_str_names_the_argument() -> None:
    assert optional_str(None, "task_id") is None
    assert optional_str("abc", "task_id") == "abc"
    with pytest.raises(ValueError, match="task_id must not be empty"):
        optional_str("", "task_id")
    with pytest.raises(TypeError, match="task_id must be a str"):
        optional_str(5, "task_id")


def test_call_round_trip_and_malformed_payloads() -> None:
    call = Call(args=(1, "x"), kwargs={"a": 1}, options={"o": True}, retries=2)
    assert Call.from_payload(call.to_payload()) == call
    with pytest.raises(TypeError, match="not a mapping"):
        Call.from_payload([])
    with pytest.raises(TypeError, match="malformed"):
        Call.from_payload({"args": {}})
    with pytest.raises(ValueError, match="bad retry count"):
        Call.from_payload({"retries": -1})
    with pytest.raises(ValueError, match="bad retry count"):
        Call.from_payload({"retries": True})
