"""The Celery app the multi-process tests run: importable by ``celery -A ranch_celery_testapp``.

The worker subprocesses read the Redis URL and the lease settings from the
environment; the test process builds the same app with :func:`make_app`.
Tasks record what they do in Redis lists so the tests can check order and
counts across processes.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any, Dict, List, Optional

import redis
from celery import Celery
from celery.signals import task_prerun, worker_ready
from ranch_celery import lru_task
from ranch_core import LRUKeyMetadata
from ranch_redis import RedisStorage


def make_app(
    redis_url: str,
    *,
    lease: float = 30.0,
    sweep: float = 0.5,
    storage_url: Optional[str] = None,
    max_wakeups: Optional[int] = None,
    budget: Optional[int] = None,
    default_concurrency_limit: Optional[int] = None,
    default_rate_limit: Optional[str] = None,
) -> Celery:
    """The test app on ``redis_url`` (broker and results; storage too unless ``storage_url``).

    ``max_wakeups`` and ``budget`` set ``ranch_max_wakeups`` / ``ranch_wakeup_budget``.
    ``default_concurrency_limit`` / ``default_rate_limit`` add ``t.defaulted`` (backlog
    ``t.defaulted``), declared with those defaults of the per-key controls.
    """
    app = Celery("ranch_celery_testapp", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        result_expires=None,
        # Test apps outlive the test's Redis: a result consumer reconnecting at
        # interpreter exit (Celery 5.6) must give up quickly, not after 20 x 1 s.
        result_backend_transport_options={
            "retry_policy": {
                "max_retries": 1,
                "interval_start": 0,
                "interval_step": 0.05,
                "interval_max": 0.1,
            },
        },
        task_routes={"t.routed_by_conf": {"queue": "ranch-images"}},
        # A worker sees its stop signal when its BRPOP returns: a tenth of a second,
        # not kombu's default second, at every one of the suite's worker teardowns.
        broker_transport_options={"polling_interval": 0.1},
        ranch_lease_seconds=lease,
        ranch_sweep_interval=sweep,
    )
    if storage_url:
        app.conf.ranch_storage_url = storage_url
    if max_wakeups is not None:
        app.conf.ranch_max_wakeups = max_wakeups
    if budget is not None:
        app.conf.ranch_wakeup_budget = budget
    rec = redis.Redis.from_url(redis_url)

    @lru_task(app, name="t.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @lru_task(app, name="t.fail", shared=False)
    def fail(message: str) -> None:
        raise ValueError(message)

    @lru_task(app, name="t.kw", shared=False)
    def kw(a: Any, *, b: Any = 0, c: Any = None) -> List[Any]:
        return [a, b, c]

    @lru_task(app, name="t.echo_repr", shared=False)
    def echo_repr(tag: str, *args: Any, **kwargs: Any) -> str:
        rec.rpush(f"repr:{tag}", repr((args, sorted(kwargs.items()))))
        return tag

    @lru_task(app, name="t.whoami", shared=False, bind=True)
    def whoami(self: Any) -> Dict[str, Any]:
        return {"id": self.request.id, "key": self.request.lru_key, "retries": self.request.retries}

    @lru_task(app, name="t.retrying", shared=False, bind=True, max_retries=3, backlog="t.record")
    def retrying(self: Any, tag: str, times: int, countdown: float) -> Dict[str, Any]:
        rec.rpush(f"order:{tag}", f"{self.request.lru_key}:retry{self.request.retries}")
        rec.rpush(f"times:{tag}", time.time())
        if self.request.retries < times:
            raise self.retry(countdown=countdown)
        return {"retries": self.request.retries, "id": self.request.id}

    @lru_task(app, name="t.retry_eta", shared=False, bind=True, max_retries=1, backlog="t.record")
    def retry_eta(self: Any, tag: str, seconds: float) -> int:
        rec.rpush(f"times:{tag}", time.time())
        if self.request.retries == 0:
            eta = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
            raise self.retry(eta=eta)
        return int(self.request.retries)

    @lru_task(app, name="t.retry_unstorable", shared=False, bind=True, max_retries=3, backlog="t.record")
    def retry_unstorable(self: Any, tag: str) -> int:
        attempts = rec.incr(f"attempts:{tag}")
        if attempts == 1:
            # The retried call cannot be encoded: the requeue fails, the lease brings the call back.
            raise self.retry(args=[object()], countdown=0)
        return int(attempts)

    # A backlog stored with pickle: a delayed retry of a call JSON cannot carry cannot be
    # published as a JSON message, so it is retried at once instead (nothing is lost).
    pickled = RedisStorage.from_url(storage_url or redis_url, namespace="t-pickled", serializer="pickle")

    @lru_task(
        app,
        name="t.pickled_retry",
        shared=False,
        bind=True,
        max_retries=1,
        storage=pickled,
        backlog="t.pickled",
    )
    def pickled_retry(self: Any, tag: str, items: Any) -> List[Any]:
        rec.rpush(f"times:{tag}", time.time())
        if self.request.retries == 0:
            raise self.retry(countdown=30)
        return sorted(items)

    @lru_task(app, name="t.give_up", shared=False, bind=True, max_retries=1)
    def give_up(self: Any) -> None:
        raise self.retry(exc=RuntimeError(f"failed {self.request.retries + 1} times"), countdown=0)

    @lru_task(app, name="t.routed_by_conf", shared=False, bind=True)
    def routed_by_conf(self: Any) -> str:
        return str(self.request.delivery_info.get("routing_key"))

    @lru_task(app, name="t.record", shared=False, backlog="t.record")
    def record(tag: str, key: str, n: int) -> None:
        rec.rpush(f"order:{tag}", f"{key}:{n}")

    @app.task(name="t.plain_record", shared=False)
    def plain_record(tag: str, key: str, n: int) -> None:
        rec.rpush(f"order:{tag}", f"{key}:{n}")

    def tier_weight(key: str, meta: LRUKeyMetadata) -> float:
        return 0.25 if meta.custom_data.get("tier") == "gold" else 1.0

    @lru_task(app, name="t.tiered", shared=False, weight_function=tier_weight, backlog="t.tiered")
    def tiered(tag: str, key: str, n: int) -> None:
        rec.rpush(f"order:{tag}", f"{key}:{n}")

    @lru_task(app, name="t.key_seen", shared=False, bind=True, max_retries=1, backlog="t.key_seen")
    def key_seen(self: Any, *args: Any) -> str:
        # The two-level keys tests: the key as the running task sees it (``repr`` keeps a
        # tuple apart from a list). A chain's later step gets the previous result first.
        label = str(args[-1])
        rec.rpush("keys", json.dumps([label, repr(self.request.lru_key), self.request.retries]))
        if label.startswith("retry") and self.request.retries == 0:
            raise self.retry(countdown=0.2)  # the retry waits in the broker (JSON), then is stored again
        return label

    @lru_task(app, name="t.mark", shared=False, bind=True)
    def mark(self: Any, token: str) -> str:
        rec.rpush("done", token)
        rec.sadd("hosts", self.request.hostname)
        return token

    @lru_task(app, name="t.slow", shared=False)
    def slow(token: str, seconds: float) -> str:
        rec.rpush("started", token)
        time.sleep(seconds)
        rec.rpush("finished", token)
        return token

    @lru_task(app, name="t.phase", shared=False)
    def phase(token: str) -> str:
        # The test sets "pause:running" to hold the call here (then SIGKILLs the worker).
        rec.rpush("phase", f"running:{token}")
        rec.rpush("started", token)
        if rec.get("pause:running"):
            time.sleep(60)
        rec.rpush("finished", token)
        return token

    def timed_body(task: Any, tag: str, seconds: float) -> int:
        # The per-key controls tests: when each call started and ended, and its retry count.
        started = time.time()
        rec.rpush(f"start:{tag}", json.dumps([task.request.lru_key, started, task.request.retries]))
        time.sleep(seconds)
        rec.rpush(f"span:{tag}", json.dumps([task.request.lru_key, started, time.time()]))
        return int(task.request.retries)

    @lru_task(app, name="t.timed", shared=False, bind=True, max_retries=0)
    def timed(self: Any, tag: str, seconds: float) -> int:
        return timed_body(self, tag, seconds)

    if default_concurrency_limit is not None or default_rate_limit is not None:

        @lru_task(
            app,
            name="t.defaulted",
            shared=False,
            bind=True,
            max_retries=0,
            backlog="t.defaulted",
            default_concurrency_limit=default_concurrency_limit,
            default_rate_limit=default_rate_limit,
        )
        def defaulted(self: Any, tag: str, seconds: float) -> int:
            return timed_body(self, tag, seconds)

    @task_prerun.connect(weak=False)
    def _prerun(sender: Any = None, task_id: Any = None, args: Any = (), **_kwargs: Any) -> None:
        # The token is taken and the call leased, but its body has not started.
        if getattr(sender, "name", None) == "t.phase" and rec.get("pause:prerun"):
            rec.rpush("phase", f"prerun:{args[0] if args else '?'}")
            time.sleep(60)

    @worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_kwargs: Any) -> None:
        rec.rpush("ready", sender.hostname if sender is not None else "?")

    return app


def _optional_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    return None if value is None else int(value)


def stall_publishing(redis_url: str) -> None:
    """Make every wake-up this worker publishes stall (after noting ``publish`` in the
    ``phase`` list): the test SIGKILLs the worker between a finish and its re-publish."""
    from ranch_celery.backlog import CeleryBacklog

    rec = redis.Redis.from_url(redis_url)
    publish = CeleryBacklog.wake

    def stalled(self: CeleryBacklog, *args: Any, **kwargs: Any) -> None:
        rec.rpush("phase", "publish")
        time.sleep(60)
        publish(self, *args, **kwargs)

    CeleryBacklog.wake = stalled  # type: ignore[method-assign]


_url: Optional[str] = os.environ.get("RANCH_TEST_REDIS_URL")
app = (
    make_app(
        _url,
        lease=float(os.environ.get("RANCH_TEST_LEASE", "30")),
        sweep=float(os.environ.get("RANCH_TEST_SWEEP", "0.5")),
        storage_url=os.environ.get("RANCH_TEST_STORAGE_URL"),
        max_wakeups=_optional_int("RANCH_TEST_MAX_WAKEUPS"),
        budget=_optional_int("RANCH_TEST_BUDGET"),
        default_concurrency_limit=_optional_int("RANCH_TEST_DEFAULT_CONCURRENCY"),
        default_rate_limit=os.environ.get("RANCH_TEST_DEFAULT_RATE"),
    )
    if _url
    else None
)
if _url and os.environ.get("RANCH_TEST_STALL_PUBLISH"):
    stall_publishing(_url)


# -- tasks of the options and canvas tests (issue 15) -------------------------------------------


def add_canvas_tasks(app: Celery, redis_url: str) -> Celery:
    """Register the tasks of ``test_celery_options``/``test_celery_canvas`` on ``app``.

    Each records ``<lru_key>:<x>`` (``None`` when run as a plain Celery
    message) so a test sees which calls went through a fair backlog.
    """
    from celery.exceptions import SoftTimeLimitExceeded

    rec = redis.Redis.from_url(redis_url)

    @lru_task(app, name="t.step", shared=False, bind=True)
    def step(self: Any, x: int, tag: str) -> int:
        rec.rpush(f"steps:{tag}", f"{getattr(self.request, 'lru_key', None)}:{x}")
        return x + 1

    @lru_task(app, name="t.total", shared=False, bind=True)
    def total(self: Any, values: List[int], tag: str) -> int:
        rec.rpush(f"steps:{tag}", f"{getattr(self.request, 'lru_key', None)}:total")
        return sum(values)

    @lru_task(app, name="t.errback", shared=False, bind=True)
    def errback(self: Any, task_id: str) -> str:
        rec.rpush("errbacks", f"{getattr(self.request, 'lru_key', None)}:{task_id}")
        return task_id

    @lru_task(app, name="t.request_info", shared=False, bind=True)
    def request_info(self: Any) -> Dict[str, Any]:
        request = self.request
        return {
            "id": request.id,
            "key": getattr(request, "lru_key", None),
            "shadow": request.shadow,
            "timelimit": list(request.timelimit) if request.timelimit else None,
            "headers": {k: v for k, v in (request.headers or {}).items() if k.startswith("x-")},
            "parent_id": request.parent_id,
            "root_id": request.root_id,
            "stamps": dict(request.stamps or {}),
        }

    @lru_task(app, name="t.sleeper", shared=False, bind=True)
    def sleeper(self: Any, seconds: float, tag: str) -> str:
        rec.rpush(f"steps:{tag}", f"{getattr(self.request, 'lru_key', None)}:start")
        try:
            time.sleep(seconds)
        except SoftTimeLimitExceeded:
            rec.rpush(f"steps:{tag}", "soft")
            return "soft"
        return "slept"

    @lru_task(app, name="t.flaky", shared=False, bind=True, max_retries=2)
    def flaky(self: Any, x: int, tag: str) -> int:
        # Fails its first attempt (a retry), then behaves as t.step.
        rec.rpush(f"steps:{tag}", f"{getattr(self.request, 'lru_key', None)}:{x}:try{self.request.retries}")
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return x + 1

    @lru_task(app, name="t.replacer", shared=False, bind=True)
    def replacer(self: Any, x: int, tag: str, ranch: bool) -> None:
        # Task.replace: the replacement takes over this call's id (and its chain/chord).
        steps = app.tasks["t.step"]
        raise self.replace(steps.lru_s("replaced", x, tag) if ranch else steps.s(x, tag))

    @lru_task(app, name="t.stamped", shared=False, bind=True)
    def stamped(self: Any, x: int, tag: str, seconds: float = 0.0) -> int:
        # Records [lru_key, x, start time] (delayed-call tests), then sleeps.
        rec.rpush(f"stamps:{tag}", json.dumps([getattr(self.request, "lru_key", None), x, time.time()]))
        time.sleep(seconds)
        return x

    @lru_task(app, name="t.spawn", shared=False, bind=True)
    def spawn(self: Any, tag: str) -> str:
        # A Ranch call made inside a task: its parent is this task (add_to_parent).
        return str(app.tasks["t.step"].lru_apply_async("child", (1, tag)).id)

    return app


def make_canvas_app(redis_url: str, **options: Any) -> Celery:
    """:func:`make_app` with the tasks of the options and canvas tests."""
    return add_canvas_tasks(make_app(redis_url, **options), redis_url)


if app is not None and _url:
    add_canvas_tasks(app, _url)
