"""Per-key controls on the Celery task, in one process: the memory:// broker, the in-memory
storage and a real Celery worker in a thread (no server). The same controls with real worker
processes on Redis are in test_celery_controls_workers.py."""

from __future__ import annotations

import time
import uuid
from typing import Any, List, Tuple

import pytest
from celery import Celery
from celery.exceptions import TaskRevokedError
from celery.worker import state as worker_state
from ranch_celery import lru_task
from ranch_celery.inprocess import in_process_worker
from ranch_celery.registry import RanchState
from ranch_celery_testkit import wait_for
from ranch_core import BacklogFull
from ranch_core.errors import BacklogConflict


def _app(**conf: Any) -> Celery:
    app = Celery("ctltest", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.005},
        task_default_queue=f"ranch-ctl-{uuid.uuid4().hex[:8]}",
        worker_prefetch_multiplier=1,
        **conf,
    )
    return app


def _reason(app: Celery, task_id: str) -> str:
    return str(app.backend.get_task_meta(task_id)["result"])


def test_get_client_metadata_shows_the_controls_and_lru_task_defaults() -> None:
    app = _app()

    @lru_task(app, shared=False, name="ctl.job", default_concurrency_limit=3, default_rate_limit="10/s")
    def job(n: int) -> int:
        return n

    meta = job.get_client_metadata("anyone")
    assert meta["concurrency_limit"] == 3 and meta["rate_limit"] == "10/s"
    assert meta["paused"] is False and meta["max_backlog"] is None and meta["running"] == 0

    assert job.set_concurrency_limit("vip", 8) is True
    assert job.set_rate_limit("vip", "100/m", burst=5) is True
    assert job.pause_key("vip") is True
    assert job.set_max_backlog("vip", 50) is True
    meta = job.get_client_metadata("vip")
    assert meta["concurrency_limit"] == 8 and meta["rate_limit"] == "100/m"
    assert meta["paused"] is True and meta["max_backlog"] == 50
    assert job.resume_key("vip") is True
    assert job.set_concurrency_limit("vip", None) is True  # back to the backlog's default
    meta = job.get_client_metadata("vip")
    assert meta["paused"] is False and meta["concurrency_limit"] == 3


def test_app_settings_give_the_defaults_and_lru_task_overrides_them() -> None:
    app = _app(ranch_default_concurrency_limit=2, ranch_default_rate_limit="5/s")

    @lru_task(app, shared=False, name="ctl.app_default")
    def by_setting() -> None:
        return None

    @lru_task(app, shared=False, name="ctl.own", backlog="own", default_concurrency_limit=7)
    def own() -> None:
        return None

    meta = by_setting.get_client_metadata("k")
    assert (meta["concurrency_limit"], meta["rate_limit"]) == (2, "5/s")
    meta = own.get_client_metadata("k")
    assert (meta["concurrency_limit"], meta["rate_limit"]) == (7, "5/s")

    configured = _app()

    @lru_task(configured, shared=False, name="ctl.config", config={"default_rate_limit": "1/m"})
    def via_config() -> None:
        return None

    assert via_config.get_client_metadata("k")["rate_limit"] == "1/m"


def test_bad_control_input_raises_naming_the_argument() -> None:
    app = _app()
    cases: List[Tuple[dict, type, str]] = [
        ({"default_concurrency_limit": 0}, ValueError, "default_concurrency_limit"),
        ({"default_concurrency_limit": 1.5}, TypeError, "default_concurrency_limit"),
        ({"default_concurrency_limit": True}, TypeError, "default_concurrency_limit"),
        ({"default_rate_limit": "10/d"}, ValueError, "default_rate_limit"),
        ({"default_rate_limit": "0/s"}, ValueError, "default_rate_limit"),
        ({"default_rate_limit": 10}, TypeError, "default_rate_limit"),
    ]
    for options, error, name in cases:
        with pytest.raises(error, match=name):
            lru_task(app, shared=False, **options)
    with pytest.raises(ValueError, match="default_rate_limit"):
        lru_task(app, shared=False, config={"default_rate_limit": "fast"})

    @lru_task(app, shared=False, name="ctl.bad")
    def job() -> None:
        return None

    with pytest.raises(ValueError, match="limit"):
        job.set_concurrency_limit("k", 0)
    with pytest.raises(TypeError, match="limit"):
        job.set_concurrency_limit("k", "2")
    with pytest.raises(ValueError, match="rate"):
        job.set_rate_limit("k", "ten/s")
    with pytest.raises(ValueError, match="burst"):
        job.set_rate_limit("k", "10/s", burst=0)
    with pytest.raises(ValueError, match="limit"):
        job.set_max_backlog("k", -1)
    with pytest.raises(ValueError, match="key"):
        job.pause_key("")
    meta = job.get_client_metadata("k")  # nothing was changed
    assert meta["concurrency_limit"] is None and meta["rate_limit"] is None
    assert meta["max_backlog"] is None and meta["paused"] is False

    later = _app(ranch_default_rate_limit="often")

    @lru_task(later, shared=False, name="ctl.later")
    def read_late() -> None:
        return None

    with pytest.raises(ValueError, match="ranch setting default_rate_limit"):
        read_late.get_client_metadata("k")  # app.conf is read at first use


def _noop() -> None:
    return None


def test_tasks_of_one_backlog_must_agree_on_its_defaults() -> None:
    app = _app()
    lru_task(app, shared=False, name="ctl.a", backlog="shared", default_concurrency_limit=2)(_noop)
    lru_task(app, shared=False, name="ctl.b", backlog="shared")(_noop)  # joins with the backlog's
    with pytest.raises(BacklogConflict, match="default_concurrency_limit=3"):
        lru_task(app, shared=False, name="ctl.c", backlog="shared", default_concurrency_limit=3)(_noop)

    # Tasks on one queue share its backlog: the conflict shows at first use.
    queued = _app()
    first = lru_task(queued, shared=False, name="ctl.q1", default_rate_limit="1/s")(_noop)
    lru_task(queued, shared=False, name="ctl.q2", default_rate_limit="2/s")(_noop)
    with pytest.raises(BacklogConflict, match="default_rate_limit"):
        first.get_client_metadata("k")

    joined = _app()
    lru_task(joined, shared=False, name="ctl.j1")(_noop)
    second = lru_task(joined, shared=False, name="ctl.j2", default_rate_limit="2/s")(_noop)
    assert second.get_client_metadata("k")["rate_limit"] == "2/s"
    assert [b.default_rate_limit for b in RanchState.of(joined).backlogs.values()] == ["2/s"]


def test_max_backlog_refuses_calls_and_stores_nothing() -> None:
    app = _app()

    @lru_task(app, shared=False, name="ctl.small")
    def job(n: int) -> int:
        return n

    job.set_max_backlog("small", 2)
    job.lru_delay("small", 1)
    job.lru_delay("small", 2)
    with pytest.raises(BacklogFull) as refused:
        job.lru_delay("small", 3)
    assert refused.value.key == "small" and refused.value.limit == 2
    assert "max_backlog is 2" in str(refused.value)
    with pytest.raises(BacklogFull):
        job.lru_delay_many("small", [((4,), None)])
    assert job.get_client_metadata("small")["pending_tasks"] == 2

    job.set_max_backlog("batch", 3)
    with pytest.raises(BacklogFull):  # all or nothing
        job.lru_delay_many("batch", [((n,), None) for n in range(4)])
    assert job.get_client_metadata("batch")["pending_tasks"] == 0
    assert len(job.lru_delay_many("batch", [((n,), None) for n in range(3)])) == 3

    # Beyond one storage batch (1,000 calls) the whole list is checked first.
    job.set_max_backlog("big", 1500)
    with pytest.raises(BacklogFull, match="1600 more refused"):
        job.lru_delay_many("big", [((n,), None) for n in range(1600)])
    assert job.get_client_metadata("big")["pending_tasks"] == 0
    assert len(job.lru_delay_many("big", [((n,), None) for n in range(1200)])) == 1200
    assert job.get_system_status()["backlog_size"] == 2 + 3 + 1200


def test_purge_and_revoke_call_store_revoked_and_the_calls_never_run() -> None:
    app = _app()
    ran: List[int] = []

    @lru_task(app, shared=False, name="ctl.junk")
    def job(n: int) -> int:
        ran.append(n)
        return n

    job.pause_key("junk")
    junk = [job.lru_delay("junk", n) for n in range(5)]
    assert job.revoke_call(junk[0].id) is True
    assert job.revoke_call(junk[0].id) is False  # no longer waits
    assert job.revoke_call("no-such-call") is False
    assert job.purge_key("junk") == 4
    assert job.purge_key("junk") == 0
    assert [r.state for r in junk] == ["REVOKED"] * 5
    assert _reason(app, junk[0].id) == "revoked"
    assert all(_reason(app, r.id) == "purged" for r in junk[1:])
    with pytest.raises(TaskRevokedError):
        junk[1].get(timeout=1)

    job.resume_key("junk")
    after = job.lru_delay("junk", 99)
    with in_process_worker(app):
        assert after.get(timeout=20) == 99
    assert ran == [99]


def test_a_rate_limited_key_keeps_one_delayed_wake_up() -> None:
    # The sweep runs every 30 s here: only the delayed wake-ups can keep the rate.
    app = _app(ranch_sweep_interval=30.0)
    starts: List[Tuple[str, float, int]] = []

    @lru_task(app, shared=False, bind=True, name="ctl.api", max_retries=0)
    def call_api(self: Any, n: int) -> int:
        starts.append((self.request.lru_key, time.time(), self.request.retries))
        return n

    call_api.set_rate_limit("api", "10/s", burst=2)
    results = [call_api.lru_delay("api", n) for n in range(6)]
    free = call_api.lru_delay("free", -1)
    began = time.monotonic()
    with in_process_worker(app):
        assert free.get(timeout=20) == -1
        assert [r.get(timeout=20) for r in results] == list(range(6))
    # 2 at once, then one per 100 ms: 0.4 s (plus the worker's start), where waiting for
    # the sweep would take 30 s per call.
    assert time.monotonic() - began < 10
    assert [retries for _, _, retries in starts] == [0] * 7  # waiting used no retry (max_retries=0)
    api = [at for key, at, _ in starts if key == "api"]
    assert len(api) == 6
    # burst + rate * T in any window T (0.05 s of slack for the time between the pop and the body)
    for window in (0.1, 0.25, 0.5):
        assert _max_in_window(api, window) <= 2 + 10 * (window + 0.05)


def _max_in_window(times: List[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t <= start + window) for start in times)


def test_celerys_revoke_of_a_waiting_call_is_honoured() -> None:
    app = _app()
    ran: List[int] = []

    @lru_task(app, shared=False, name="ctl.revokable")
    def job(n: int) -> int:
        ran.append(n)
        return n

    job.pause_key("k")
    doomed = job.lru_delay("k", 1)
    kept = job.lru_delay("k", 2)
    early_id = "revoked-before-it-was-stored"
    with in_process_worker(app):
        app.AsyncResult(doomed.id).revoke()  # Celery's own result: the worker removes the call
        wait_for(lambda: job.get_client_metadata("k")["pending_tasks"] == 1, 10, "the call removed")
        assert doomed.state == "REVOKED"
        # A call whose id the worker knows as revoked when it takes it is skipped (Celery's Request).
        app.control.revoke(early_id)
        wait_for(lambda: early_id in worker_state.revoked, 10, "the revoke to reach the worker")
        early = job.lru_apply_async("k", (3,), task_id=early_id)
        job.resume_key("k")
        assert kept.get(timeout=20) == 2
        wait_for(lambda: early.state == "REVOKED", 10, "the skipped call to be REVOKED")
        wait_for(lambda: job.get_system_status()["leased"] == 0, 10, "its lease acknowledged")
    assert ran == [2]
    assert job.get_client_metadata("k")["pending_tasks"] == 0
    worker_state.revoked.discard(early_id)


def test_a_purged_call_whose_result_is_ignored_stores_nothing() -> None:
    app = _app()

    @lru_task(app, shared=False, name="ctl.quiet", ignore_result=True)
    def quiet() -> None:
        return None

    quiet.pause_key("q")
    result = quiet.lru_delay("q")
    assert quiet.purge_key("q") == 1
    assert result.state == "PENDING"  # as Celery: an ignored result is not stored, REVOKED neither


def test_a_backlog_that_cannot_be_built_is_left_out_of_the_sweep(caplog: pytest.LogCaptureFixture) -> None:
    from ranch_celery.revoking import _ids, revoke_waiting
    from ranch_redis import RedisStorage

    assert revoke_waiting(_app(), ["nothing-declared"]) == []
    assert _ids(["a", "b"]) == ["a", "b"] and _ids("a") == ["a"] and _ids(None) == []

    app = _app()
    down = RedisStorage.from_url("redis://127.0.0.1:1/0", retries=0, socket_connect_timeout=0.2)

    @lru_task(app, shared=False, name="ctl.down", storage=down, backlog="down", default_concurrency_limit=1)
    def unreachable() -> None:
        return None

    @lru_task(app, shared=False, name="ctl.up", backlog="up")
    def reachable() -> None:
        return None

    state = RanchState.of(app)
    state.resolve()
    # Writing the default fails: that backlog is logged and skipped, the other one is swept.
    assert [d.scheduler.storage for d in state.dispatchers()] == [state.backlog("up").storage]
    assert "backlog 'down' cannot be swept now" in caplog.text
    assert revoke_waiting(app, ["some-id"]) == []  # logged, not raised


def test_a_group_that_does_not_fit_a_max_backlog_stores_none_of_its_calls() -> None:
    from celery import group

    app = _app()

    @lru_task(app, shared=False, name="ctl.grouped")
    def job(n: int) -> int:
        return n

    job.set_max_backlog("full", 2)
    job.lru_delay("full", 0)
    mixed = group([job.lru_s("other", n) for n in range(3)] + [job.lru_s("full", n) for n in range(2)])
    with pytest.raises(BacklogFull, match="'full'"):
        mixed.apply_async()
    one_key = group(job.lru_s("full", n) for n in range(2))
    with pytest.raises(BacklogFull):
        one_key.apply_async()
    assert job.get_client_metadata("other")["pending_tasks"] == 0
    assert job.get_client_metadata("full")["pending_tasks"] == 1
    assert len(group(job.lru_s("full", 9)).apply_async().results) == 1


def test_the_result_of_a_call_revokes_it_without_any_worker() -> None:
    import pickle

    from celery.result import AsyncResult

    app = _app()

    @lru_task(app, shared=False, name="ctl.direct")
    def job(n: int) -> int:
        return n

    result = job.lru_delay("k", 1)
    other = job.lru_delay("k", 2)
    assert isinstance(result, AsyncResult) and type(result) is type(job.AsyncResult(other.id))
    result.revoke()  # no worker runs: the call is removed here, and the broadcast sent
    assert result.state == "REVOKED" and _reason(app, result.id) == "revoked"
    assert job.get_client_metadata("k")["pending_tasks"] == 1
    job.AsyncResult(other.id).revoke()
    assert job.get_client_metadata("k")["pending_tasks"] == 0
    copy = pickle.loads(pickle.dumps(result))
    assert isinstance(copy, AsyncResult) and copy.id == result.id
    assert job.AsyncResult("never-stored").state == "PENDING"
    job.AsyncResult("never-stored").revoke()  # not waiting: Celery's revoke only
