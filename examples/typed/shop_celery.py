"""User code with ``@lru_task``, as it is written in a typed code base (``mypy --strict``).

Checked in CI by ``nox -s typecheck`` (``mypy --config-file examples/typed/mypy.ini
examples/typed``). The lines at the bottom are mistakes mypy must catch: each
carries the ``# type: ignore[code]`` of the error it must raise, and ``--strict``
(``warn_unused_ignores``) fails the run if that error is not raised.
"""

from __future__ import annotations

from celery import Celery
from ranch_celery import lru_task

app = Celery("shop", broker="memory://")


@lru_task(app)
def render_invoice(invoice_id: int, *, copies: int = 1) -> str:
    """The user's task: its own signature and return type."""
    return f"invoice {invoice_id} x{copies}"


@lru_task(app, name="shop.send_receipt", max_retries=3)
def send_receipt(email: str) -> None:
    """A task declared with options."""


def enqueue(tenant: str, invoice_id: int) -> str:
    """Producer code: fair calls, the management API, a plain call."""
    result = render_invoice.lru_delay(tenant, invoice_id, copies=2, priority_weight=0.5, expiry=600)
    send_receipt.lru_delay(tenant, "ada@example.com")
    accepted: bool = render_invoice.set_priority_weight("tenant-vip", 0.5)
    assert accepted
    text: str = render_invoice(invoice_id)  # calling the task runs it here, as with Celery
    task_id: str = result.id
    return f"{text} {task_id}"


def mistakes() -> None:
    """Calls that are wrong: mypy must report each (see the module docstring)."""
    render_invoice.lru_dealy("tenant", 1)  # type: ignore[attr-defined]
    render_invoice.lru_delay(42, 1)  # type: ignore[arg-type]
    render_invoice.lru_delay("tenant", 1, priority_weight="high")  # type: ignore[arg-type]
    render_invoice.set_priority_weight("tenant", "heavy")  # type: ignore[arg-type]
    render_invoice("not an int")  # type: ignore[arg-type]
