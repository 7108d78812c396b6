"""Redis storage for Ranch: atomic Lua push and fair pop, leases, Redis Cluster ready.

::

    from ranch_core import FairScheduler
    from ranch_redis import RedisStorage

    scheduler = FairScheduler(RedisStorage.from_url("redis://localhost:6379/0"))

    # asyncio: ranch_core.AsyncFairScheduler(AsyncRedisStorage.from_url(...))
"""

from ranch_redis.async_storage import AsyncRedisStorage
from ranch_redis.storage import RedisStorage

__version__ = "0.1.0"

__all__ = ["AsyncRedisStorage", "RedisStorage", "__version__"]
