"""How calls are encoded in the backlog: kombu's JSON, as Celery encodes messages.

A call stored by ``lru_delay`` is encoded with :class:`KombuJSONSerializer`
(``kombu.utils.json``), the encoder behind Celery's ``json`` serializer, so
a task receives exactly what ``.delay`` would deliver: ``datetime``,
``date``, ``time``, ``Decimal``, ``UUID`` and ``bytes`` arguments come back
as the same types. :func:`explain_unencodable` names the argument that
cannot be encoded.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from kombu.utils import json as kombu_json
from ranch_core.calls import Call
from ranch_core.serializers import PickleSerializer, Serializer


class KombuJSONSerializer:
    """A :class:`ranch_core.serializers.Serializer` using kombu's JSON (Celery's ``json``)."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; ``TypeError`` if kombu's JSON cannot encode it."""
        try:
            text: str = kombu_json.dumps(value)  # type: ignore[no-untyped-call]
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(f"cannot be encoded with kombu's JSON: {exc}") from None
        return text.encode()

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced (datetime, Decimal, UUID, ... restored)."""
        return kombu_json.loads(data)  # type: ignore[no-untyped-call]


def serializer_named(name: str) -> Serializer:
    """``"json"``: :class:`KombuJSONSerializer`; ``"pickle"``: ranch_core's pickle."""
    if name == "pickle":
        return PickleSerializer()
    return KombuJSONSerializer()


def explain_unencodable(
    serializer: Serializer, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Optional[TypeError]:
    """A ``TypeError`` naming the first argument ``serializer`` cannot encode, or ``None``."""
    for index, value in enumerate(args):
        problem = _problem(serializer, value)
        if problem is not None:
            return TypeError(
                f"argument {index + 1} (args[{index}]) of type {type(value).__name__} cannot be "
                f"encoded by the backlog's {serializer.name} serializer: {problem}"
            )
    for name, value in kwargs.items():
        problem = _problem(serializer, value)
        if problem is not None:
            return TypeError(
                f"keyword {name!r} of type {type(value).__name__} cannot be encoded by the "
                f"backlog's {serializer.name} serializer: {problem}"
            )
    return None


def explain_call(serializer: Serializer, call: Call) -> Optional[TypeError]:
    """A ``TypeError`` naming what of ``call`` (an argument, else its options) cannot be encoded."""
    named = explain_unencodable(serializer, call.args, call.kwargs)
    if named is not None:
        return named
    problem = _problem(serializer, call.options)
    if problem is None:
        return None
    return TypeError(
        f"the call's options (link, link_error, chain, chord, headers, ...) cannot be encoded by the "
        f"backlog's {serializer.name} serializer: {problem}"
    )


def _problem(serializer: Serializer, value: Any) -> Optional[str]:
    try:
        serializer.dumps(value)
    except TypeError as exc:
        return str(exc)
    return None
