"""Switching from celery-ranch: its settings, names and status, and the per-queue default (issue 9)."""

from __future__ import annotations

import warnings
from typing import Any, List

import pytest
from celery import Celery
from celery.exceptions import NotRegistered
from ranch_celery import SerializerType, get_status, lru_task
from ranch_celery.codec import KombuJSONSerializer
from ranch_celery.inprocess import in_process_worker
from ranch_celery.wakeups import LEGACY_WAKE_UP_TASK
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_core import InMemoryStorage
from ranch_core.calls import Call
from ranch_core.serializers import PickleSerializer
from ranch_redis import RedisStorage


def _app(broker: str = "memory://", **conf: Any) -> Celery:
    app = Celery("migrate", broker=broker, set_as_current=False)
    app.conf.update(conf)
    return app


def test_serializer_type_is_the_seeds() -> None:
    assert SerializerType.JSON == "json" and SerializerType.PICKLE == "pickle"
    assert {member.value for member in SerializerType} == {"json", "pickle"}


@pytest.mark.redis
def test_seed_settings_through_config(redis_url) -> None:
    app = _app(redis_url)

    @lru_task(
        app,
        shared=False,
        config={
            "redis_prefix": "ranch:",
            "redis_serializer": SerializerType.PICKLE,
            "redis_max_retries": 0,
            "redis_socket_timeout": 2.5,
            "redis_socket_connect_timeout": 1.5,
        },
    )
    def job(x: Any) -> Any:
        return x

    job.lru_delay("k", {1, 2})  # pickle stores a set
    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage)
    assert storage.namespace == "ranch:celery"
    assert isinstance(storage.serializer, PickleSerializer)
    kwargs = storage.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 2.5 and kwargs["socket_connect_timeout"] == 1.5
    assert job.get_client_metadata("k")["pending_tasks"] == 1
    storage.close()


@pytest.mark.redis
def test_seed_settings_through_app_conf_and_the_seeds_dict(redis_url) -> None:
    app = _app(
        redis_url, ranch_redis_prefix="tenant-jobs:", ranch={"redis_use_ssl": True, "serializer": "json"}
    )

    @lru_task(app, shared=False)
    def job() -> None: ...

    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage) and storage.namespace == "tenant-jobs:celery"
    assert isinstance(storage.serializer, KombuJSONSerializer)
    assert "SSL" in storage.client.connection_pool.connection_class.__name__  # redis:// became rediss://
    storage.close()


def test_config_given_to_lru_task_wins_over_app_conf() -> None:
    app = _app(ranch_lease_seconds=10, ranch_sweep_interval=2)

    @lru_task(app, shared=False, config={"lease_seconds": 60})
    def job() -> None: ...

    assert job.lru_dispatcher.scheduler.lease_seconds == 60
    from ranch_celery.registry import RanchState

    assert RanchState.of(app).sweep_interval() == 2


def test_unknown_and_ignored_keys_warn_once() -> None:
    app = _app(ranch_not_a_setting_conf=1)
    with pytest.warns(UserWarning, match="unknown ranch setting 'not_a_setting_given'"):

        @lru_task(app, shared=False, config={"not_a_setting_given": 1})
        def one() -> None: ...

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @lru_task(app, shared=False, config={"not_a_setting_given": 1})
        def two() -> None: ...  # the same key again: no second warning

    with pytest.warns(UserWarning, match="redis_key_ttl.*has no effect"):
        lru_task(app, shared=False, config={"redis_key_ttl": 60})
    with pytest.warns(UserWarning, match=r"unknown ranch setting 'not_a_setting_conf' \(app.conf"):
        one.lru_delay("k")


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({"redis_max_retries": -1}, ValueError, "redis_max_retries"),
        ({"serializer": "yaml"}, ValueError, "serializer"),
        ({"redis_prefix": "a{b}"}, ValueError, "redis_prefix"),
        ({"redis_use_ssl": "yes"}, TypeError, "redis_use_ssl"),
        ({"lease_seconds": 0}, ValueError, "lease"),
        ({"storage_url": 5}, TypeError, "storage_url"),
        ({1: 2}, TypeError, "config keys"),
        (["redis_prefix"], TypeError, "config must be a mapping"),
    ],
)
def test_bad_settings_name_the_key(config, error, match) -> None:
    app = _app()
    with pytest.raises(error, match=match):
        lru_task(app, shared=False, config=config)


def test_bad_app_conf_setting_raises_at_first_use_and_contradicting_configs_are_refused() -> None:
    app = _app(ranch_lease_seconds=-1)

    @lru_task(app, shared=False, config={"redis_prefix": "a:"})
    def job() -> None: ...

    with pytest.raises(ValueError, match="lease"):
        job.lru_delay("k")
    with pytest.raises(ValueError, match="redis_prefix"):
        lru_task(app, shared=False, config={"redis_prefix": "b:"})


def test_setters_return_true_and_get_status_covers_every_backlog() -> None:
    from celery._state import _set_current_app, get_current_app

    app = _app(task_routes={"m.report": {"queue": "reports"}})

    @lru_task(app, shared=False, name="m.email")
    def email() -> None: ...

    @lru_task(app, shared=False, name="m.report")
    def report() -> None: ...

    assert get_status(app)["initialized"] is True  # declared, storage resolved on demand
    assert email.set_priority_weight("acme", 0.5) is True
    assert email.add_tag("acme", "tier", "gold") is True
    assert email.set_custom_data("acme", "seats", 3) is True
    email.lru_delay("acme")
    email.lru_delay("globex")
    report.lru_delay("acme")
    status = get_status(app)
    assert status["initialized"] is True and status["storage_type"] == "InMemoryStorage"
    assert status["backlog_size"] == 3 and status["unique_lru_keys"] == 3 and status["health"] is True
    assert set(status["backlogs"]) == {"celery", "reports"}
    assert status["backlogs"]["reports"]["backlog_size"] == 1
    assert email.get_client_metadata("acme")["lru_key"] == "acme"

    previous = get_current_app()
    _set_current_app(app)
    try:
        assert get_status()["backlog_size"] == 3  # the current app by default
    finally:
        _set_current_app(previous)
    assert get_status(_app())["initialized"] is False  # an app without lru_task


def test_get_status_reports_a_backlog_without_storage() -> None:
    app = _app("amqp://guest@127.0.0.1//")

    @lru_task(app, shared=False)
    def job() -> None: ...

    status = get_status(app)
    assert status["health"] is False and "no storage" in status["errors"]["celery"]


def test_prioritize_task_is_a_deprecated_alias() -> None:
    import ranch_celery

    with pytest.warns(DeprecationWarning, match="WAKE_UP_TASK"):
        assert ranch_celery.PRIORITIZE_TASK == ranch_celery.WAKE_UP_TASK
    with pytest.raises(AttributeError):
        ranch_celery.NOT_A_NAME


def test_wake_ups_under_the_old_name_are_still_consumed() -> None:
    app = Celery("legacy", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(broker_transport_options={"polling_interval": 0.005}, task_default_queue="ranch-legacy")
    seen: List[int] = []

    @lru_task(app, shared=False, name="legacy.job")
    def job(n: int) -> None:
        seen.append(n)

    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, InMemoryStorage)
    # A call stored with its wake-up published under the 0.1 name (in flight during an upgrade).
    job.lru_dispatcher.scheduler.push("k", Call(args=[7], options={"task": "legacy.job"}).to_payload())
    app.send_task(LEGACY_WAKE_UP_TASK, args=[job.lru_backlog], queue="ranch-legacy")
    with in_process_worker(app, hostname="legacy@test"):
        wait_for(lambda: seen == [7], 10, "the call to run")


@pytest.mark.redis
@pytest.mark.slow
def test_a_call_of_a_task_the_worker_lacks_fails_with_not_registered(redis_url, start_worker) -> None:
    app = make_app(redis_url)

    @lru_task(app, name="t.producer_only", shared=False)
    def producer_only() -> None: ...

    # Same queue, so the same backlog as t.add: the worker pops it and does not know the task.
    assert producer_only.lru_backlog == app.tasks["t.add"].lru_backlog == "celery"
    missing = producer_only.lru_delay("k")
    after = app.tasks["t.add"].lru_delay("k", 1, 1)
    worker = start_worker()
    with pytest.raises(NotRegistered, match=r"t\.producer_only"):
        missing.get(timeout=20)
    assert missing.state == "FAILURE"
    assert after.get(timeout=20) == 2  # the worker goes on
    wait_for(lambda: "does not have" in worker.log.read_text(), 10, "the error line", worker)
    assert missing.id in worker.log.read_text()
    wait_for(lambda: producer_only.get_system_status()["leased"] == 0, 10, "the lease to be acked", worker)
