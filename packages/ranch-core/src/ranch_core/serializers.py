"""Payload serializers. JSON is the default everywhere; pickle only by name."""

from __future__ import annotations

import json
import json.decoder
import json.encoder
import pickle
from typing import Any, Callable, Protocol, Tuple, Union, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Turns payloads into bytes and back."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError`` if it cannot be encoded."""

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()
# The C accelerators behind json.dumps/json.loads, called without the two
# Python-level wrapper frames each: this is on every push and pop, and halves
# the cost for small payloads. Pure-Python fallbacks where there is no C module.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
)
_SCAN: Callable[[str, int], Tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


class JSONSerializer:
    """Strict JSON: no NaN, no infinities, only JSON types (tuples become lists)."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        try:
            if _C_ENCODE is None:
                return _ENCODER.encode(value).encode()
            return "".join(_C_ENCODE(value, 0)).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(f"payload cannot be encoded as JSON: {exc}") from None

    def loads(self, data: bytes) -> Any:
        text = data.decode()
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            raise json.JSONDecodeError("Expecting value", text, 0) from None
        if end != len(text):
            return _DECODER.decode(text)  # trailing whitespace is fine, anything else raises
        return value


class PickleSerializer:
    """Pickle. Anyone who can write to the storage can run code in your workers
    through it: use only with a storage no untrusted party can write to."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"payload cannot be pickled: {exc}") from None

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - opted into by name only


SerializerSpec = Union[str, Serializer]


def get_serializer(spec: SerializerSpec) -> Serializer:
    """``"json"``, ``"pickle"`` or a :class:`Serializer` instance."""
    if isinstance(spec, str):
        if spec == "json":
            return JSONSerializer()
        if spec == "pickle":
            return PickleSerializer()
        raise ValueError(f"unknown serializer {spec!r}: use 'json' or 'pickle'")
    if isinstance(spec, Serializer):
        return spec
    raise TypeError(f"serializer must be 'json', 'pickle' or a Serializer, not {type(spec).__name__}")
