"""Storage resolved at first use: an app without a broker, configured later, works (issue 9, bug 2)."""

from __future__ import annotations

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_celery_testkit import wait_for
from ranch_core import InMemoryStorage
from ranch_redis import RedisStorage

pytestmark = [pytest.mark.redis]


def _producer(redis_url: str) -> Celery:
    app = Celery("producer", broker=redis_url, set_as_current=False)

    @lru_task(app, name="lazy.echo", shared=False)
    def echo(token: str) -> str:
        return token

    return app


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cli", "env", "object"])
def test_worker_configured_after_decoration_finds_the_brokers_redis(
    redis_url, start_worker, rec, mode
) -> None:
    env = {"RANCH_LAZY_MODE": mode}
    global_args: list = []
    if mode == "cli":
        global_args = ["-b", redis_url]  # celery -A app -b redis://... worker
    elif mode == "env":
        env["CELERY_BROKER_URL"] = redis_url
    else:
        env["RANCH_LAZY_BROKER"] = redis_url
    echo = _producer(redis_url).tasks["lazy.echo"]
    echo.lru_delay("tenant-a", f"{mode}-1")
    echo.lru_delay("tenant-b", f"{mode}-2")
    worker = start_worker(app_module="ranch_celery_lazyapp", global_args=global_args, env=env)
    wait_for(lambda: rec.llen("lazy") == 2, 20, "both calls to run", worker)
    assert sorted(rec.lrange("lazy", 0, -1)) == [f"{mode}-1", f"{mode}-2"]
    assert "no storage" not in worker.log.read_text()


def test_config_from_object_after_decoration_in_process(redis_url) -> None:
    app = Celery("later", set_as_current=False)

    @lru_task(app, shared=False, name="later.job")
    def job() -> None: ...

    class Config:
        broker_url = redis_url
        task_default_queue = "later-q"

    app.config_from_object(Config)
    job.lru_delay("k")
    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage) and storage.namespace == "celery:later-q"
    assert job.lru_backlog == "later-q"
    assert job.get_client_metadata("k")["pending_tasks"] == 1


def test_storage_url_set_after_decoration_wins_over_the_broker(redis_url) -> None:
    app = Celery("later2", broker="memory://", set_as_current=False)

    @lru_task(app, shared=False)
    def job() -> None: ...

    app.conf.ranch_storage_url = redis_url
    assert isinstance(job.lru_dispatcher.scheduler.storage, RedisStorage)


def test_memory_broker_set_later_means_in_memory_storage() -> None:
    app = Celery("later3", set_as_current=False)

    @lru_task(app, shared=False)
    def job() -> None: ...

    app.conf.broker_url = "memory://"
    assert isinstance(job.lru_dispatcher.scheduler.storage, InMemoryStorage)
