"""Ranch core: fair scheduling across task sources.

Read in this order: :mod:`ranch_core.algorithm` (the rule),
:mod:`ranch_core.protocols` (what a storage does),
:mod:`ranch_core.backends.memory` (a storage), :mod:`ranch_core.scheduler`
(the facade), :mod:`ranch_core.async_scheduler` (the same for asyncio,
over :mod:`ranch_core.async_protocols`); then what the Celery and Dramatiq adapters share:
:mod:`ranch_core.calls` (a stored call), :mod:`ranch_core.dispatcher`
(one backlog as an adapter drives it), :mod:`ranch_core.retries` (the
retry rule), :mod:`ranch_core.runtimes` (timing a call's function for
``cost="runtime"``), :mod:`ranch_core.leases` (the worker's sweep thread),
:mod:`ranch_core.management` (the seed's management API) and
:mod:`ranch_core.backlogs` (declaring a backlog); :mod:`ranch_core.errors`
(one family under :class:`RanchError`) and :mod:`ranch_core.testing` (the
conformance suite).
"""

from ranch_core.async_protocols import AsyncStorage
from ranch_core.async_scheduler import AsyncFairScheduler
from ranch_core.backends.async_memory import AsyncInMemoryStorage
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.errors import (
    BacklogConflict,
    BacklogFull,
    CallExpired,
    CallRevoked,
    CorruptTask,
    DuplicateTask,
    MissingExtra,
    PublishFailed,
    RanchError,
    StorageUnavailable,
    UnknownBacklog,
)
from ranch_core.models import LRUKeyMetadata, PopResult, RateLimit, RuntimeCost, ScheduledTask, SystemStatus
from ranch_core.protocols import Backlog, Controls, RuntimeCosts, Storage, Tracker
from ranch_core.scheduler import FairScheduler, WeightFunction
from ranch_core.serializers import JSONSerializer, PickleSerializer, Serializer, get_serializer

__version__ = "0.1.0"

__all__ = [
    "AsyncFairScheduler",
    "AsyncInMemoryStorage",
    "AsyncStorage",
    "Backlog",
    "BacklogConflict",
    "BacklogFull",
    "CallExpired",
    "CallRevoked",
    "Controls",
    "CorruptTask",
    "DuplicateTask",
    "FairScheduler",
    "InMemoryStorage",
    "JSONSerializer",
    "LRUKeyMetadata",
    "MissingExtra",
    "PickleSerializer",
    "PopResult",
    "PublishFailed",
    "RanchError",
    "RateLimit",
    "RuntimeCost",
    "RuntimeCosts",
    "ScheduledTask",
    "Serializer",
    "Storage",
    "StorageUnavailable",
    "SystemStatus",
    "Tracker",
    "UnknownBacklog",
    "WeightFunction",
    "get_serializer",
]
