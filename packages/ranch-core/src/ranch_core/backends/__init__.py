"""Storage implementations that ship with ranch-core."""

from ranch_core.backends.memory import InMemoryStorage

__all__ = ["InMemoryStorage"]
