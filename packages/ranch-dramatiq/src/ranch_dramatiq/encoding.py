"""Stored calls in Dramatiq's own encoding: the actor gets what ``.send`` would deliver.

:class:`EncoderSerializer` is the :class:`ranch_core.serializers.Serializer`
of every storage ranch-dramatiq creates. It encodes a stored call with
Dramatiq's encoder (``dramatiq.get_encoder()``: JSON by default, pickle if
the application called ``dramatiq.set_encoder(PickleEncoder())``), so a call
that waits in the backlog goes through the same round trip as a message
that waits in the broker: tuples come back as lists, ``datetime`` is
refused by JSON and kept by pickle, exactly as with ``.send``.

The encoder is looked up at every encode and decode, not when the storage
is created: ``lru_actor`` usually runs at import time, before the
application sets its encoder, and Dramatiq's own messages follow the
encoder in effect when they are sent or received too. Producers and
workers must therefore use the same encoder, as they must for Dramatiq.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import dramatiq
from dramatiq.encoder import Encoder, JSONEncoder

#: ``json.dumps(value, separators=(",", ":"))`` (Dramatiq's ``JSONEncoder``), one encoder for every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode


class EncoderSerializer:
    """A :class:`~ranch_core.serializers.Serializer` built on a Dramatiq encoder.

    ``encoder`` fixes one encoder; by default the one in effect at each call
    (``dramatiq.get_encoder()``). A value the encoder cannot encode raises a
    ``TypeError`` naming the argument (``args[1]``, keyword ``'when'``) and
    its type.
    """

    name = "dramatiq-encoder"

    def __init__(self, encoder: Optional[Encoder] = None) -> None:
        self._encoder = encoder

    @property
    def encoder(self) -> Encoder:
        """The encoder this serializer uses now."""
        return self._encoder if self._encoder is not None else dramatiq.get_encoder()

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` (a stored call); ``TypeError`` naming the culprit if it cannot be."""
        encoder = self.encoder
        try:
            if type(encoder) is JSONEncoder:
                # what JSONEncoder.encode does, without building a json encoder per call
                return _COMPACT_JSON(value).encode("utf-8")
            return encoder.encode(value)
        except Exception as exc:  # encoders raise TypeError, ValueError, PicklingError, ...
            raise TypeError(describe_failure(encoder, value, exc)) from exc

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""
        return self.encoder.decode(data)


def describe_failure(encoder: Encoder, value: Any, error: BaseException) -> str:
    """Why ``value`` cannot be encoded: the first argument or option that fails on its own."""
    how = f"Dramatiq's {type(encoder).__name__}"
    if isinstance(value, Mapping):
        for name, part in _parts(value):
            try:
                encoder.encode({"value": part})
            except Exception as exc:  # noqa: BLE001 - same as dumps
                return (
                    f"{name} of type {type(part).__name__} cannot be encoded by {how}: {exc}; "
                    "nothing was stored (plain .send() would refuse it too)"
                )
    return f"the call cannot be encoded by {how}: {error}; nothing was stored"


def _parts(payload: Mapping[str, Any]) -> Any:
    """``(name, value)`` of each argument and message option of a stored call."""
    args, kwargs = payload.get("args"), payload.get("kwargs")
    if isinstance(args, (list, tuple)):
        for index, arg in enumerate(args):
            yield f"argument {index + 1} (args[{index}])", arg
    if isinstance(kwargs, Mapping):
        for name, arg in kwargs.items():
            yield f"keyword {name!r}", arg
    options = payload.get("options")
    if isinstance(options, Mapping):
        message_options = options.get("message_options")
        if isinstance(message_options, Mapping):
            for name, option in message_options.items():
                yield f"message option {name!r}", option
