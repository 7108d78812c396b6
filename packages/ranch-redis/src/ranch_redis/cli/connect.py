"""Where the ``ranch`` command finds Redis and a backlog's storage.

The URL comes from ``--url`` or ``RANCH_REDIS_URL``; there is no default
address. A backlog is a ranch-redis namespace (``celery:<queue>`` for a Celery
backlog on a Redis broker, ``dramatiq:<queue>`` for Dramatiq, whatever was
given to ``RedisStorage`` otherwise); ``--namespace PREFIX`` lets commands
name backlogs without that prefix (``--namespace celery`` + ``default`` is
``celery:default``). Commands only open backlogs listed in the registry, so a
typo is an error, not an empty backlog.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ranch_redis.cli.errors import UsageError
from ranch_redis.connection import describe_url, make_client
from ranch_redis.storage import RedisStorage

#: The environment variable the URL is read from when ``--url`` is not given.
URL_ENV = "RANCH_REDIS_URL"


def redis_url(given: Optional[str]) -> str:
    """``--url`` or ``$RANCH_REDIS_URL``; :class:`UsageError` if neither is set."""
    url = given or os.environ.get(URL_ENV, "")
    if not url:
        raise UsageError(f"no Redis URL: pass --url redis://HOST:PORT/DB or set {URL_ENV}")
    return url


class Connection:
    """One Redis client for a run of the command, and a storage per backlog on it.

    Connection errors are retried once (0.1 s later): an operator gets an
    answer, or exit code 1, within a second or so. With ``cluster=True`` the
    URL names any node of a Redis Cluster.
    """

    def __init__(self, url: str, prefix: Optional[str] = None, *, cluster: bool = False) -> None:
        self.url = url
        self.prefix = prefix
        self.client = make_client(url, cluster=cluster, options={"socket_timeout": 10})
        self._storages: Dict[str, RedisStorage] = {}

    def namespace(self, backlog: str) -> str:
        """The ranch-redis namespace of ``backlog`` (``<prefix>:<backlog>`` with ``--namespace``)."""
        return f"{self.prefix}:{backlog}" if self.prefix else backlog

    def storage(self, namespace: str) -> RedisStorage:
        """The storage of ``namespace`` on this connection."""
        if namespace not in self._storages:
            self._storages[namespace] = RedisStorage(
                self.client, namespace=namespace, retries=1, backoff=0.1, where=describe_url(self.url)
            )
        return self._storages[namespace]

    def backlogs(self) -> List[str]:
        """The registered namespaces (under the prefix, if one was given), sorted."""
        registry = RedisStorage(self.client, namespace="-", retries=1, where=describe_url(self.url))
        names = registry.backlogs()
        if self.prefix:
            names = [name for name in names if name.startswith(f"{self.prefix}:")]
        return names

    def backlog(self, backlog: str) -> RedisStorage:
        """The storage of a registered backlog; :class:`UsageError` naming
        ``ranch backlogs`` if it is not registered."""
        namespace = self.namespace(backlog)
        if namespace not in self.backlogs():
            raise UsageError(
                f"unknown backlog {namespace!r} (`ranch backlogs` lists the backlogs of this Redis)"
            )
        return self.storage(namespace)

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def summary(connection: Connection, namespace: str) -> Dict[str, Any]:
    """A backlog's counters (``status``) as a dict, with its name."""
    status = connection.storage(namespace).status()
    return {"backlog": namespace, **status.to_dict()}
