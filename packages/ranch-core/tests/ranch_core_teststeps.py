"""Small steps the storage-level mutant tests share (``test_core_mutants_*.py``)."""

from __future__ import annotations

from ranch_core import InMemoryStorage
from ranch_core.models import RateLimit
from ranch_core.validation import check_rate_limit


def rated(rate: str, burst: int = 1) -> RateLimit:
    """The :class:`RateLimit` of Celery's rate syntax (``"10/s"``)."""
    limit = check_rate_limit(rate, burst)
    assert limit is not None
    return limit


def popped_id(storage: InMemoryStorage, now: float) -> str:
    """Pop at ``now`` with a 60 s lease; the id of the call served (one must be)."""
    result = storage.pop(now, 60.0)
    assert result.task is not None
    return result.task.task_id
