"""Storage implementations that ship with ranch-core."""

from ranch_core.backends.async_memory import AsyncInMemoryStorage
from ranch_core.backends.memory import InMemoryStorage

__all__ = ["AsyncInMemoryStorage", "InMemoryStorage"]
