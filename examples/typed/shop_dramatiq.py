"""User code with ``@lru_actor``, as it is written in a typed code base (``mypy --strict``).

Checked in CI by ``nox -s typecheck``, like ``shop_celery.py``; the mistakes at
the bottom must each be reported by mypy (``warn_unused_ignores`` fails the run
otherwise).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from ranch_dramatiq import lru_actor

broker = StubBroker()
dramatiq.set_broker(broker)


@lru_actor
def resize(image_id: int, width: int = 800) -> None:
    """The user's actor."""


@lru_actor(queue_name="reports", max_retries=3)
def make_report(report_id: str) -> int:
    """An actor declared with options."""
    return len(report_id)


def enqueue(tenant: str, image_id: int) -> str:
    """Producer code: fair sends, the management API, a direct call."""
    message = resize.lru_send(tenant, image_id, width=400, priority_weight=0.5, expiry=600)
    make_report.lru_send(tenant, "2026-q1")
    accepted: bool = resize.set_priority_weight("tenant-vip", 0.5)
    assert accepted
    resize(image_id)  # calling the actor runs it here, as with Dramatiq
    message_id: str = message.message_id
    return message_id


def mistakes() -> None:
    """Calls that are wrong: mypy must report each (see the module docstring)."""
    resize.lru_sendd("tenant", 1)  # type: ignore[attr-defined]
    resize.lru_send(42, 1)  # type: ignore[arg-type]
    resize.lru_send("tenant", 1, priority_weight="high")  # type: ignore[arg-type]
    resize.set_priority_weight("tenant", "heavy")  # type: ignore[arg-type]
    resize("not an int")  # type: ignore[arg-type]
