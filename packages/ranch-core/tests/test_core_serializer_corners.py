"""Serializer corners: empty and trailing input, unpicklable payloads, the pure-Python JSON path."""

from __future__ import annotations

import json
import threading

import pytest
from ranch_core import JSONSerializer, PickleSerializer, get_serializer
from ranch_core import serializers as serializers_module


@pytest.mark.parametrize("data", [b"", b"   ", b'{"a": 1} x', b"[1] [2]"])
def test_json_loads_refuses_empty_or_trailing_input(data: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        JSONSerializer().loads(data)


def test_json_loads_accepts_trailing_whitespace() -> None:
    assert JSONSerializer().loads(b'{"a": [1, 2]}  \n') == {"a": [1, 2]}


def test_pickle_refuses_an_unpicklable_payload_as_type_error() -> None:
    with pytest.raises(TypeError, match=r"^payload cannot be pickled"):
        PickleSerializer().dumps(threading.Lock())
    with pytest.raises(TypeError, match=r"^payload cannot be pickled"):
        PickleSerializer().dumps(lambda: None)


def test_json_without_the_c_encoder_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"s": "é", "n": [1, 2.5, None, True], "t": (1, 2)}
    with_c = JSONSerializer().dumps(value)
    monkeypatch.setattr(serializers_module, "_C_ENCODE", None)  # a Python without _json
    assert JSONSerializer().dumps(value) == with_c == b'{"s":"\\u00e9","n":[1,2.5,null,true],"t":[1,2]}'
    for bad in (float("inf"), {1}, object()):
        with pytest.raises(TypeError, match=r"^payload cannot be encoded as JSON"):
            JSONSerializer().dumps(bad)


def test_a_serializer_instance_is_used_as_is() -> None:
    serializer = PickleSerializer()
    assert get_serializer(serializer) is serializer
    with pytest.raises(TypeError, match=r"^serializer must be 'json', 'pickle' or a Serializer, not int"):
        get_serializer(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^unknown serializer 'yaml'"):
        get_serializer("yaml")
