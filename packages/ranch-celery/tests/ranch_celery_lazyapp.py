"""A Celery app defined without a broker, as ``celery -A ranch_celery_lazyapp`` loads it.

The broker comes later, one of three ways (``RANCH_LAZY_MODE``):
``cli`` (``celery -b URL``), ``env`` (``CELERY_BROKER_URL``) or ``object``
(``app.config_from_object`` after the ``@lru_task`` decorators ran). The
task records what it received in the test Redis (``RANCH_TEST_REDIS_URL``).
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_ready
from ranch_celery import lru_task

app = Celery("ranch_celery_lazyapp")
# The worker sees its stop signal within a tenth of a second, as ranch_celery_testapp's.
app.conf.broker_transport_options = {"polling_interval": 0.1}
_rec = (
    redis.Redis.from_url(os.environ["RANCH_TEST_REDIS_URL"]) if "RANCH_TEST_REDIS_URL" in os.environ else None
)


@lru_task(app, name="lazy.echo", shared=False)
def echo(token: str) -> str:
    if _rec is not None:
        _rec.rpush("lazy", token)
    return token


class Config:
    """What ``config_from_object`` reads when ``RANCH_LAZY_MODE=object``."""

    broker_url = os.environ.get("RANCH_LAZY_BROKER", "")
    worker_prefetch_multiplier = 1


if os.environ.get("RANCH_LAZY_MODE") == "object":
    app.config_from_object(Config)


@worker_ready.connect(weak=False)
def _ready(sender: Any = None, **_kwargs: Any) -> None:
    if _rec is not None:
        _rec.rpush("ready", sender.hostname if sender is not None else "?")
