"""Ranch core: fair scheduling across task sources.

Read in this order: :mod:`ranch_core.algorithm` (the rule),
:mod:`ranch_core.protocols` (what a storage does),
:mod:`ranch_core.backends.memory` (a storage), :mod:`ranch_core.scheduler`
(the facade), :mod:`ranch_core.dispatch` (what the Celery and Dramatiq
adapters share) and :mod:`ranch_core.testing` (the conformance suite).
"""

from ranch_core.backends.memory import InMemoryStorage
from ranch_core.errors import CorruptTask, RanchError, StorageUnavailable
from ranch_core.models import LRUKeyMetadata, PopResult, ScheduledTask, SystemStatus
from ranch_core.protocols import Backlog, Storage, Tracker
from ranch_core.scheduler import FairScheduler, WeightFunction
from ranch_core.serializers import JSONSerializer, PickleSerializer, Serializer, get_serializer

__version__ = "0.1.0"

__all__ = [
    "Backlog",
    "CorruptTask",
    "FairScheduler",
    "InMemoryStorage",
    "JSONSerializer",
    "LRUKeyMetadata",
    "PickleSerializer",
    "PopResult",
    "RanchError",
    "ScheduledTask",
    "Serializer",
    "Storage",
    "StorageUnavailable",
    "SystemStatus",
    "Tracker",
    "WeightFunction",
    "get_serializer",
]
