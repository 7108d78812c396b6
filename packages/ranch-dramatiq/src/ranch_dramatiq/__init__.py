"""Fair scheduling across task sources for Dramatiq.

::

    import dramatiq
    from ranch_dramatiq import lru_actor

    @lru_actor(store_results=True)
    def render(report_id):
        ...

    message = render.lru_send("customer-42", 7)   # fair across customers
    render.lru_send(("customer-42", "user-7"), 8)  # fair across customers, then their users
    message.get_result(block=True)

Read :mod:`ranch_dramatiq.actor` (the API), :mod:`ranch_dramatiq.middleware`
(the ``Ranch`` middleware and the wake-up actors),
:mod:`ranch_dramatiq.backlog` (what a wake-up does),
:mod:`ranch_dramatiq.execution` (how a stored call runs as its own message),
:mod:`ranch_dramatiq.options` (the message options a stored call takes),
:mod:`ranch_dramatiq.enqueue` and :mod:`ranch_dramatiq.batching` (Ranch
messages in pipelines and groups), :mod:`ranch_dramatiq.storage` and
:mod:`ranch_dramatiq.encoding` (where and how calls are stored).
"""

from ranch_dramatiq.actor import LRUActor, lru_actor
from ranch_dramatiq.encoding import EncoderSerializer
from ranch_dramatiq.errors import (
    BacklogConflict,
    BacklogFull,
    CallExpired,
    CallRevoked,
    MissingExtra,
    UnknownBacklog,
)
from ranch_dramatiq.execution import current_key
from ranch_dramatiq.middleware import Ranch

__version__ = "0.1.0"

__all__ = [
    "BacklogConflict",
    "BacklogFull",
    "CallExpired",
    "CallRevoked",
    "EncoderSerializer",
    "LRUActor",
    "MissingExtra",
    "Ranch",
    "UnknownBacklog",
    "__version__",
    "current_key",
    "lru_actor",
]
