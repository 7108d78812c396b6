"""``Pending``: a checked Ranch message, ready to be stored (alone, or with its group)."""

from __future__ import annotations

from typing import Optional

import attrs
from ranch_core.calls import Call

from ranch_dramatiq.backlog import DramatiqBacklog
from ranch_dramatiq.options import RanchSettings


@attrs.frozen
class Pending:
    """A checked Ranch message, ready to be stored in its backlog."""

    backlog: DramatiqBacklog
    settings: RanchSettings
    call: Call
    message_id: str
    #: Seconds until the call may run (Dramatiq's ``delay``), ``None``: at once.
    delay: Optional[float] = None

    def store(self) -> None:
        """Store the call alone (publishing a wake-up if the storage minted a token)."""
        self.backlog.dispatcher.submit(
            self.settings.key,
            self.call,
            priority_weight=self.settings.priority_weight,
            expiry=self.settings.expiry,
            tags=self.settings.tag_map(),
            task_id=self.message_id,
            delay=self.delay,
        )
