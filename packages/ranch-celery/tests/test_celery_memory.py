"""The no-server path: memory:// broker, in-memory storage, a real Celery worker in this process."""

from __future__ import annotations

import time
from typing import Any, List

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_celery.inprocess import in_process_worker
from ranch_core import LRUKeyMetadata


def _app() -> Celery:
    app = Celery("memtest", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.005},
        task_default_queue="ranch-memtest",
        worker_prefetch_multiplier=1,
    )
    return app


def test_in_process_worker_runs_calls_fairly_with_a_weight_function() -> None:
    app = _app()
    order: List[str] = []

    def vip_first(key: str, meta: LRUKeyMetadata) -> float:
        return 0.5 if "vip" in meta.tags else 1.0

    @lru_task(app, shared=False, bind=True, weight_function=vip_first)
    def job(self: Any, n: int) -> str:
        order.append(self.request.lru_key)
        if n < 0:
            raise RuntimeError("negative")
        return f"{self.request.lru_key}:{n}"

    job.add_tag("v", "vip")
    results = [job.lru_delay(key, n) for n in range(30) for key in ("v", "o")]
    failing = job.lru_delay("o", -1)
    with in_process_worker(app, hostname="mem@test"):
        assert results[0].get(timeout=20) == "v:0"
        assert all(r.get(timeout=20) for r in results)
        with pytest.raises(RuntimeError, match="negative"):
            failing.get(timeout=20)
    # The weight function made "v" cost 0.5: twice the service of "o" while both wait.
    first = order[:30]
    assert first.count("v") == 20, first
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0 and status["served_total"] == 61


def test_signals_fire_for_the_users_call_and_an_empty_wake_up_is_a_no_op() -> None:
    from celery.signals import task_postrun, task_prerun, task_success
    from ranch_celery import WAKE_UP_TASK
    from ranch_celery.registry import RanchState

    app = _app()
    seen: List[tuple] = []

    @lru_task(app, shared=False, name="mem.echo")
    def echo(x: int) -> int:
        return x

    def on_prerun(sender: Any = None, task_id: Any = None, **_: Any) -> None:
        seen.append(("prerun", sender.name, task_id))

    def on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
        seen.append(("success", sender.name, result))

    def on_postrun(sender: Any = None, task_id: Any = None, state: Any = None, **_: Any) -> None:
        seen.append(("postrun", sender.name, task_id, state))

    task_prerun.connect(on_prerun, weak=False)
    task_success.connect(on_success, weak=False)
    task_postrun.connect(on_postrun, weak=False)
    try:
        result = echo.lru_delay("k", 7)
        backlog = RanchState.of(app).backlog_of("mem.echo")
        with in_process_worker(app, hostname="sig@test"):
            assert result.get(timeout=20) == 7
            backlog.wake()  # one wake-up too many: nothing is stored
            deadline = time.monotonic() + 10
            while sum(1 for s in seen if s[:2] == ("postrun", WAKE_UP_TASK)) < 2:
                assert time.monotonic() < deadline, seen
                time.sleep(0.01)
    finally:
        task_prerun.disconnect(on_prerun)
        task_success.disconnect(on_success)
        task_postrun.disconnect(on_postrun)
    mine = [s for s in seen if s[1] == "mem.echo"]
    assert mine == [
        ("prerun", "mem.echo", result.id),
        ("success", "mem.echo", 7),
        ("postrun", "mem.echo", result.id, "SUCCESS"),
    ]
    wake_results = [s[2] for s in seen if s[:2] == ("success", WAKE_UP_TASK)]
    assert wake_results[:2] == [result.id, None]  # the second wake-up found nothing: a no-op
    assert echo.get_system_status()["served_total"] == 1


def test_a_call_sent_from_a_running_call_names_its_parent_and_headers_reach_the_request() -> None:
    app = _app()
    seen: List[Any] = []

    @lru_task(app, shared=False, bind=True, name="mem.child")
    def child(self: Any) -> None:
        seen.append((self.request.id, self.request.parent_id, self.request.root_id, self.request.headers))

    @lru_task(app, shared=False, bind=True, name="mem.parent")
    def parent(self: Any) -> str:
        return str(child.lru_apply_async("k", headers={"trace": "t-1"}).id)

    result = parent.lru_delay("k")
    with pytest.raises(TypeError, match="headers must be a mapping"):
        child.lru_apply_async("k", headers=["trace"])
    with in_process_worker(app, hostname="parent@test"):
        child_id = result.get(timeout=20)
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert seen[0][:3] == (child_id, result.id, result.id)
    assert seen[0][3]["trace"] == "t-1"


def test_a_wake_up_for_a_backlog_this_worker_lacks_fails_loudly() -> None:
    from celery.signals import task_failure
    from ranch_celery import WAKE_UP_TASK
    from ranch_core.errors import UnknownBacklog

    app = _app()
    failures: List[BaseException] = []

    @lru_task(app, shared=False, name="mem.known")
    def known() -> None: ...

    def on_failure(sender: Any = None, exception: Any = None, **_: Any) -> None:
        failures.append(exception)

    task_failure.connect(on_failure, weak=False)
    try:
        app.send_task(WAKE_UP_TASK, args=["no-such-backlog"], queue="ranch-memtest")
        with in_process_worker(app, hostname="unknown@test"):
            deadline = time.monotonic() + 10
            while not failures:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        task_failure.disconnect(on_failure)
    assert isinstance(failures[0], UnknownBacklog) and "no-such-backlog" in str(failures[0])
