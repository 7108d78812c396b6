"""Payload serializers. JSON is the default everywhere; pickle only by name."""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, Union, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Turns payloads into bytes and back."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError`` if it cannot be encoded."""

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""


class JSONSerializer:
    """Strict JSON: no NaN, no infinities, only JSON types (tuples become lists)."""

    name = "json"
    _encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
    _decoder = json.JSONDecoder()

    def dumps(self, value: Any) -> bytes:
        try:
            return self._encoder.encode(value).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"payload cannot be encoded as JSON: {exc}") from None

    def loads(self, data: bytes) -> Any:
        return self._decoder.decode(data.decode())


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
