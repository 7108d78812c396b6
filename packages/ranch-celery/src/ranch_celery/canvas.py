"""Ranch calls in Celery's canvas: the Ranch signature, and storing one call now or with its group.

A Ranch signature is a plain Celery ``Signature`` whose options carry
``lru_key`` (and ``priority_weight``, ``expiry``, ``tags`` when given). A pair key
``(group, member)`` travels as a list once the signature is serialized (JSON);
it becomes a tuple again where the call is stored.
Celery applies a signature through its task's ``apply_async``, wherever it
is applied: by the producer, by the worker that ran the previous step of a
chain or the task a ``link`` hangs on, by the result backend completing a
chord. ``LRUTaskMixin.apply_async`` sees ``lru_key`` and stores the call in
the fair backlog instead of publishing it. Because it is a plain signature,
it survives serialization into messages, stored calls and results, and
Celery's own canvas classes (``chain``, ``group``, ``chord``) need nothing
new; no process needs a registered signature type to read it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ranch_core import validation
from ranch_core.calls import check_arguments
from ranch_core.keys import Key

from ranch_celery.options import prepare_options

#: The signature options that make a signature a Ranch one (read by ``LRUTaskMixin.apply_async``).
RANCH_OPTIONS = ("lru_key", "priority_weight", "expiry", "tags")
#: Arguments of ``Task.signature`` that are not ``apply_async`` options.
_SIGNATURE_ARGUMENTS = ("immutable", "subtask_type", "type", "app")


def lru_signature(
    task: Any,
    lru_key: Key,
    args: Sequence[Any],
    kwargs: Optional[Mapping[str, Any]],
    priority_weight: Optional[float],
    expiry: Optional[float],
    tags: Optional[Mapping[str, str]],
    options: Mapping[str, Any],
) -> Any:
    """``task.signature(args, kwargs, **options)`` with the Ranch options; key and arguments checked now."""
    lru_key = validation.check_any_key(lru_key, "lru_key")
    check_arguments(args, kwargs)
    # Checked now as well as when applied, so a bad option shows where the signature is made.
    prepare_options({k: v for k, v in options.items() if k not in _SIGNATURE_ARGUMENTS}, expiry)
    ranch = {"lru_key": lru_key, "priority_weight": priority_weight, "expiry": expiry, "tags": tags}
    extra = {name: value for name, value in ranch.items() if value is not None}
    return task.signature(tuple(args), dict(kwargs or {}), **dict(options), **extra)
