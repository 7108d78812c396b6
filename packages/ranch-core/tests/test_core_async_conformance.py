"""The asyncio in-memory storage passes the one conformance suite, through ``BlockingFacade``."""

from __future__ import annotations

from hypothesis import settings
from ranch_core import AsyncInMemoryStorage
from ranch_core.protocols import Storage
from ranch_core.testing import BlockingFacade, StorageConformance


class TestAsyncInMemoryConformance(StorageConformance):
    def make_storage(self) -> Storage:
        return BlockingFacade.of(AsyncInMemoryStorage)

    @property
    def controls_settings(self) -> settings:
        # Each step wraps the in-memory storage's own (tested at three times
        # this budget in test_core_memory_conformance): the profile's budget
        # checks the wrapping, a third of the time through the event loop.
        return settings(super().controls_settings, max_examples=settings().max_examples)

    @property
    def conformance_settings(self) -> settings:
        # The reference-model run wraps the in-memory storage's steps (run at the
        # profile's budget in test_core_memory_conformance): half of it checks the
        # wrapping, and keeps the test under 15 s with the suite's parallel processes.
        return settings(super().conformance_settings, max_examples=max(1, settings().max_examples // 2))
