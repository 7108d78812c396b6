"""The asyncio in-memory storage passes the one conformance suite, through ``BlockingFacade``."""

from __future__ import annotations

from ranch_core import AsyncInMemoryStorage
from ranch_core.protocols import Storage
from ranch_core.testing import BlockingFacade, StorageConformance


class TestAsyncInMemoryConformance(StorageConformance):
    def make_storage(self) -> Storage:
        return BlockingFacade.of(AsyncInMemoryStorage)
