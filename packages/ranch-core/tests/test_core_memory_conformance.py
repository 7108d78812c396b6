"""The in-memory storage passes the conformance suite (JSON and raw payloads)."""

from __future__ import annotations

from ranch_core import InMemoryStorage
from ranch_core.protocols import Storage
from ranch_core.testing import StorageConformance


class TestInMemoryConformance(StorageConformance):
    def make_storage(self) -> Storage:
        return InMemoryStorage()
