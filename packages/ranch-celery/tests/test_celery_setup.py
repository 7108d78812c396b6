"""Decoration and first use: storage resolution, backlogs per queue, management API (no worker needed)."""

from __future__ import annotations

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_core import InMemoryStorage
from ranch_redis import RedisStorage


def _app(broker: str, **conf: object) -> Celery:
    app = Celery("setup", broker=broker, set_as_current=False)
    app.conf.update(conf)
    return app


def test_memory_broker_means_in_memory_storage() -> None:
    app = _app("memory://")

    @lru_task(app, shared=False)
    def job() -> None: ...

    assert isinstance(job.lru_dispatcher.scheduler.storage, InMemoryStorage)
    assert job.lru_backlog == "celery"  # the queue the task routes to


@pytest.mark.redis
def test_redis_broker_means_its_redis_in_the_backlogs_namespace(redis_url) -> None:
    app = _app(redis_url)

    @lru_task(app, shared=False, name="proj.job")
    def job() -> None: ...

    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage)
    assert storage.namespace == "celery:celery"  # backlog = the task's queue, "celery"


@pytest.mark.redis
def test_configured_storage_url_wins_over_the_broker(redis_url) -> None:
    app = _app("memory://", ranch_storage_url=redis_url)

    @lru_task(app, shared=False, name="proj.job2", backlog="shared-domain")
    def job() -> None: ...

    storage = job.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage) and storage.namespace == "celery:shared-domain"


def test_explicit_storage_wins() -> None:
    app = _app("amqp://guest@127.0.0.1//")
    mine = InMemoryStorage()

    @lru_task(app, storage=mine, shared=False)
    def job() -> None: ...

    assert job.lru_dispatcher.scheduler.storage is mine


def test_other_broker_without_storage_is_an_error_at_first_use() -> None:
    from ranch_celery import StorageNotConfigured

    app = _app("amqp://guest@127.0.0.1//")

    @lru_task(app, shared=False)
    def job() -> None: ...

    # Nothing is read at decoration: the broker may still change (celery worker -b, config_from_object).
    with pytest.raises(StorageNotConfigured, match="no storage for backlog") as raised:
        job.lru_delay("k")
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert "storage=" in message and "ranch_storage_url" in message and "CELERY_BROKER_URL" in message
    status = job.get_system_status()
    assert status["initialized"] is False and status["health"] is False


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"storage": object()}, TypeError),
        ({"weight_function": 3}, TypeError),
        ({"backlog": ""}, ValueError),
        ({"backlog": "a{b}"}, ValueError),
        ({"backlog": 7}, TypeError),
    ],
)
def test_bad_decorator_arguments(kwargs, error) -> None:
    app = _app("memory://")
    with pytest.raises(error):

        @lru_task(app, shared=False, **kwargs)
        def job() -> None: ...


def test_bad_storage_url_is_an_error_at_first_use() -> None:
    app = _app("memory://", ranch_storage_url="mongodb://x")

    @lru_task(app, shared=False)
    def job() -> None: ...

    with pytest.raises(ValueError, match="unsupported ranch storage URL"):
        job.lru_delay("k")


def test_tasks_routed_to_one_queue_share_one_backlog_unless_they_name_their_own() -> None:
    app = _app("memory://")
    app.conf.task_routes = {"proj.report": {"queue": "reports"}}

    @lru_task(app, shared=False, name="proj.email")
    def email() -> None: ...

    @lru_task(app, shared=False, name="proj.resize")
    def resize() -> None: ...

    @lru_task(app, shared=False, name="proj.report")
    def report() -> None: ...

    @lru_task(app, shared=False, name="proj.own", backlog="own")
    def own() -> None: ...

    email.lru_delay("k")
    assert (email.lru_backlog, resize.lru_backlog, report.lru_backlog, own.lru_backlog) == (
        "celery",
        "celery",
        "reports",
        "own",
    )
    assert resize.lru_dispatcher is email.lru_dispatcher
    # Weights, tags and pending calls belong to the key in the shared backlog.
    assert resize.get_client_metadata("k")["pending_tasks"] == 1
    resize.set_priority_weight("k", 0.5)
    assert email.get_client_metadata("k")["weight"] == 0.5
    assert report.get_client_metadata("k")["pending_tasks"] == 0
    assert own.get_client_metadata("k")["weight"] == 1.0

    with pytest.raises(ValueError, match="weight_function"):

        @lru_task(app, shared=False, backlog="own", weight_function=lambda key, meta: 1.0)
        def four() -> None: ...


def test_tasks_sharing_a_queue_must_agree_on_the_weight_function() -> None:
    from ranch_core.errors import BacklogConflict

    app = _app("memory://")

    @lru_task(app, shared=False, name="proj.a", weight_function=lambda key, meta: 1.0)
    def a() -> None: ...

    @lru_task(app, shared=False, name="proj.b")
    def b() -> None: ...  # joins the backlog of queue "celery" and its weight function

    assert b.lru_dispatcher is a.lru_dispatcher
    assert a.lru_dispatcher.scheduler.weight_function is not None

    @lru_task(app, shared=False, name="proj.c", weight_function=lambda key, meta: 2.0)
    def c() -> None: ...

    with pytest.raises(BacklogConflict, match="backlog=") as raised:
        c.lru_delay("k")
    assert isinstance(raised.value, ValueError)


def test_management_api() -> None:
    app = _app("memory://")

    @lru_task(app, shared=False)
    def job(x: int) -> int:
        return x

    job.set_priority_weight("acme", 0.5)
    job.set_custom_data("acme", "plan", {"seats": 10})
    job.add_tag("acme", "tier", "gold")
    job.lru_delay("globex", 1, tags={"tier": "free"}, priority_weight=2.0)
    job.lru_delay("acme", 2)
    assert job.get_tagged_clients("tier") == ["acme", "globex"]
    assert job.get_tagged_clients("tier", "gold") == ["acme"]
    assert job.get_custom_data("acme") == {"plan": {"seats": 10}}
    assert job.get_custom_data("acme", "plan") == {"seats": 10}
    assert job.get_custom_data("acme", "missing", "dflt") == "dflt"
    meta = job.get_client_metadata("acme")
    assert meta["weight"] == 0.5 and meta["pending_tasks"] == 1 and meta["served_total"] == 0
    assert meta["tags"] == {"tier": "gold"} and meta["last_execution"] is None
    assert job.get_client_metadata("globex")["weight"] == 2.0
    status = job.get_system_status()
    assert status == {
        "backlog_size": 2,
        "unique_lru_keys": 2,
        "leased": 0,
        "expired_total": 0,
        "served_total": 0,
        "delayed": 0,
        "health": True,
        "backlog": "celery",
        "initialized": True,
        "storage_type": "InMemoryStorage",
    }
    with pytest.raises(ValueError):
        job.set_priority_weight("acme", 0)
    with pytest.raises(TypeError):
        job.set_custom_data("acme", "bad", object())
    with pytest.raises(ValueError):
        job.get_client_metadata("")


def test_plain_delay_still_works_on_an_lru_task() -> None:
    app = _app("memory://")

    @lru_task(app, shared=False)
    def job(x: int) -> int:
        return x * 2

    # Plain Celery calling conventions are untouched.
    assert job(21) == 42
    assert job.run(2) == 4
    result = job.delay(3)
    assert result.id and job.get_system_status()["backlog_size"] == 0


@pytest.mark.filterwarnings(r"ignore:\s*The 'queue' task attribute is deprecated")
def test_wake_ups_are_routed_like_the_task() -> None:
    from ranch_celery.registry import RanchState

    app = _app("memory://")
    app.conf.task_routes = {"proj.by_conf": {"queue": "conf-q"}}

    @lru_task(app, shared=False, name="proj.by_option", queue="option-q")
    def by_option() -> None: ...

    @lru_task(app, shared=False, name="proj.by_conf")
    def by_conf() -> None: ...

    @lru_task(app, shared=False, name="proj.default")
    def default() -> None: ...

    state = RanchState.of(app)
    assert state.backlog_of("proj.by_option").queue == "option-q"
    assert state.backlog_of("proj.by_conf").queue == "conf-q"
    assert state.backlog_of("proj.default").queue == "celery"
    assert state.backlog("option-q") is state.backlog_of("proj.by_option")


def test_storage_url_memory_and_the_first_broker_of_a_failover_list(redis_url) -> None:
    app = _app("amqp://guest@127.0.0.1//", ranch_storage_url="memory://")

    @lru_task(app, shared=False)
    def job() -> None: ...

    assert isinstance(job.lru_dispatcher.scheduler.storage, InMemoryStorage)

    failover = _app(f"{redis_url};redis://127.0.0.1:1/0")

    @lru_task(failover, shared=False)
    def other() -> None: ...

    storage = other.lru_dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage) and "127.0.0.1:1/" not in repr(storage)
    listed = _app("memory://")
    listed.conf.broker_url = [redis_url, "redis://127.0.0.1:1/0"]

    @lru_task(listed, shared=False)
    def third() -> None: ...

    assert isinstance(third.lru_dispatcher.scheduler.storage, RedisStorage)


def test_an_explicit_storage_serves_one_backlog_only() -> None:
    from ranch_core.errors import BacklogConflict

    app = _app("memory://")
    mine = InMemoryStorage()

    @lru_task(app, shared=False, name="x.one", storage=mine, backlog="one")
    def one() -> None: ...

    with pytest.raises(BacklogConflict, match="already holds backlog"):

        @lru_task(app, shared=False, name="x.two", storage=mine, backlog="two")
        def two() -> None: ...

    @lru_task(app, shared=False, name="x.three", storage=mine, backlog="one")
    def three() -> None: ...  # the same backlog may name it again

    assert three.lru_dispatcher is one.lru_dispatcher
    with pytest.raises(TypeError, match="decorates a function"):
        lru_task(app, shared=False)(42)
