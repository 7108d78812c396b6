"""Per-key controls with real Dramatiq workers (issue 11).

Each test runs on two rigs: in memory (a StubBroker, the in-memory storage,
two ``dramatiq.Worker``\\ s in this process) and on Redis (two RedisBrokers
on one Redis, each with its own ``Ranch`` middleware and RedisStorage of the
same backlog, and a worker each). Two ``dramatiq`` CLI processes check the
cap across processes. Every call writes when it started and ended to Redis
(``ranch_dramatiq_testapp.record_timed``); the tests check the controls on
those timestamps.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator, List, Optional, Sequence

import dramatiq
import pytest
import redis
from dramatiq.broker import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Middleware
from dramatiq.results import ResultFailure, ResultMissing, Results
from dramatiq.results.backends import RedisBackend, StubBackend
from ranch_core import InMemoryStorage, RanchError
from ranch_dramatiq import (
    BacklogConflict,
    BacklogFull,
    CallRevoked,
    EncoderSerializer,
    LRUActor,
    Ranch,
    lru_actor,
)
from ranch_dramatiq.middleware import WAKE_UP_PREFIX

TIMEOUT_MS = 10_000
KINDS = ["memory", "redis"]


@dataclass(frozen=True)
class Run:
    """One run of ``timed_call``, as it recorded itself."""

    key: str
    start: float
    end: float
    pid: int
    id: str
    retries: int


def max_overlap(runs: Sequence[Run]) -> int:
    """The most runs in progress at once (an end at the same instant as a start comes first)."""
    events = sorted([(run.start, 1) for run in runs] + [(run.end, -1) for run in runs])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


class CountWakeUps(Middleware):
    """Counts the wake-up messages the workers process."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name.startswith(WAKE_UP_PREFIX):
            with self.lock:
                self.count += 1


class Rig:
    """Brokers sharing one backlog, and two workers taking its wake-ups."""

    def __init__(self, kind: str, url: str, testapp: ModuleType, run_worker: Any) -> None:
        self.kind = kind
        self.run_worker = run_worker
        self.url = url
        self.testapp = testapp
        self.client = redis.Redis.from_url(url)
        self.counter = CountWakeUps()
        self.backend: Any = StubBackend() if kind == "memory" else RedisBackend(url=url)
        # in memory one broker (its storage is this process's); on Redis one per worker
        self.brokers = [self._broker() for _ in range(1 if kind == "memory" else 2)]

    def _broker(self) -> Broker:
        broker: Broker = StubBroker() if self.kind == "memory" else RedisBroker(url=self.url)
        broker.add_middleware(Results(backend=self.backend))
        broker.add_middleware(CurrentMessage())
        broker.add_middleware(self.counter)
        # a sweep every 10 s: what a limited key does before then is the wake-ups' doing
        broker.add_middleware(Ranch(lease_seconds=30))
        return broker

    def declare(self, **options: Any) -> LRUActor[Any, Any]:
        """``timed_call(key, seconds)`` on every broker; returns the first (the producer's)."""
        actors: List[LRUActor[Any, Any]] = []
        for broker in self.brokers:

            @lru_actor(broker=broker, store_results=True, max_retries=0, **options)
            def timed_call(key: str, seconds: float = 0.0) -> str:
                return str(self.testapp.record_timed(self.client, key, seconds))

            actors.append(timed_call)
        return actors[0]

    @contextmanager
    def workers(self, threads: int = 2) -> Iterator[None]:
        """Two real ``dramatiq.Worker``\\ s of ``threads`` threads each."""
        brokers = self.brokers * 2 if self.kind == "memory" else self.brokers
        with ExitStack() as stack:
            for broker in brokers:
                stack.enter_context(self.run_worker(broker, threads))
            yield

    def runs(self, key: Optional[str] = None) -> List[Run]:
        """The runs recorded so far (of ``key`` if given), by start time."""
        rows = [Run(**json.loads(raw)) for raw in self.client.lrange(self.testapp.TIMED, 0, -1)]
        return sorted((run for run in rows if key is None or run.key == key), key=lambda run: run.start)

    def result(self, message: Any) -> Any:
        if self.kind == "redis":
            return message.get_result(backend=self.backend, block=True, timeout=TIMEOUT_MS)
        # StubBackend's blocking get backs off up to 2 s between looks: look every 10 ms
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            try:
                return message.get_result(backend=self.backend)
            except ResultMissing:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def queued(self) -> int:
        """Messages waiting on the broker's default queue (wake-ups)."""
        if self.kind == "memory":
            broker = self.brokers[0]
            assert isinstance(broker, StubBroker)
            return sum(
                broker.queues[name].qsize() for name in ("default", "default.DQ") if name in broker.queues
            )
        return int(self.client.llen("dramatiq:default")) + int(self.client.llen("dramatiq:default.DQ"))

    def close(self) -> None:
        for broker in self.brokers:
            broker.close()
        self.client.close()


@pytest.fixture(params=KINDS)
def rig(request: Any, redis_url: str, testapp: ModuleType, run_worker: Any) -> Iterator[Rig]:
    the_rig = Rig(request.param, redis_url, testapp, run_worker)
    yield the_rig
    the_rig.close()


# -- each control, with two workers -------------------------------------------


def test_a_concurrency_cap_holds_across_two_workers(rig: Rig, wait: Any) -> None:
    job = rig.declare()
    assert job.set_concurrency_limit("capped", 2) is True
    capped = [job.lru_send("capped", "capped", 0.2) for _ in range(10)]
    free = [job.lru_send(f"free{n}", f"free{n}", 0.2) for n in range(4)]
    meta = job.get_client_metadata("capped")
    assert (meta["concurrency_limit"], meta["running"], meta["pending_tasks"]) == (2, 0, 10)
    with rig.workers(threads=3):  # 6 threads for a cap of 2
        wait(lambda: job.get_client_metadata("capped")["running"] == 2, timeout=10)
        assert [rig.result(message) for message in capped] == ["capped"] * 10
        assert [rig.result(message) for message in free] == [f"free{n}" for n in range(4)]
    capped_runs = rig.runs("capped")
    assert len(capped_runs) == 10 and len(rig.runs()) == 14
    assert max_overlap(capped_runs) == 2  # never more than the cap, and the cap was used
    # work-conserving: the free keys ran beside the capped flood, not behind it
    last_capped = capped_runs[-1].start
    assert all(run.start < last_capped for run in rig.runs() if run.key != "capped")
    meta = job.get_client_metadata("capped")
    assert (meta["running"], meta["pending_tasks"], meta["served_total"]) == (0, 0, 10)


def test_a_rate_limit_holds_in_every_window_and_spends_no_retry(rig: Rig) -> None:
    rate, burst, calls = 5.0, 2, 8
    job = rig.declare()  # max_retries=0: a limited call that raised would fail for good
    assert job.set_rate_limit("api", "5/s", burst=burst) is True
    assert job.get_client_metadata("api")["rate_limit"] == "5/s"
    limited = [job.lru_send("api", "api") for _ in range(calls)]
    quiet = job.lru_send("quiet", "quiet")
    with rig.workers(threads=2):
        assert [rig.result(message) for message in limited] == ["api"] * calls
        assert rig.result(quiet) == "quiet"
    starts = [run.start for run in rig.runs("api")]
    # starts are recorded in the actor, a little after the pop that the bucket
    # timed: allow each window that much (a tenth of a second, half an interval)
    jitter = 0.1
    for first in range(calls):
        for last in range(first, calls):
            assert last - first + 1 <= burst + rate * (starts[last] - starts[first] + jitter), starts
    expected = (calls - burst) / rate
    assert starts[-1] - starts[0] >= expected - jitter  # the limit did hold calls back
    # ... and no longer: delayed wake-ups, not the sweep (every 10 s here), bring the key back
    assert starts[-1] - starts[0] <= 5 * expected
    assert all(run.retries == 0 for run in rig.runs())  # waited, never retried
    # the waiting key kept one delayed wake-up: no wake-up re-published in a loop
    assert rig.counter.count <= 4 * (calls + 1)


def test_pause_holds_a_key_until_it_is_resumed(rig: Rig) -> None:
    job = rig.declare()
    assert job.pause_key("held") is True
    held = [job.lru_send("held", "held") for _ in range(3)]
    free = [job.lru_send("free", "free") for _ in range(3)]
    assert job.get_client_metadata("held")["paused"] is True
    with rig.workers(threads=2):
        assert [rig.result(message) for message in free] == ["free"] * 3
        assert rig.runs("held") == []
        meta = job.get_client_metadata("held")
        assert (meta["paused"], meta["pending_tasks"]) == (True, 3)
        resumed = time.time()
        assert job.resume_key("held") is True
        assert [rig.result(message) for message in held] == ["held"] * 3
    assert all(run.start >= resumed for run in rig.runs("held"))
    meta = job.get_client_metadata("held")
    assert (meta["paused"], meta["pending_tasks"]) == (False, 0)


def test_max_backlog_refuses_calls_and_stores_nothing(rig: Rig) -> None:
    job = rig.declare()
    assert job.set_max_backlog("small", 2) is True
    first = [job.lru_send("small", "small") for _ in range(2)]
    queued = rig.queued()
    with pytest.raises(BacklogFull) as full:
        job.lru_send("small", "small")
    assert isinstance(full.value, RanchError) and (full.value.key, full.value.limit) == ("small", 2)
    with pytest.raises(BacklogFull):
        job.lru_send_with_options("small", ("small",), max_retries=1)
    refused_message = job.lru_message("small", "small")
    with pytest.raises(BacklogFull):
        rig.brokers[0].enqueue(refused_message)
    assert job.set_max_backlog("small", 4) is True
    with pytest.raises(BacklogFull):  # 2 + 3 > 4: all or nothing
        job.lru_send_many("small", [(("small",), None)] * 3)
    meta = job.get_client_metadata("small")
    assert (meta["pending_tasks"], meta["max_backlog"]) == (2, 4)
    assert rig.queued() == queued  # nothing published either
    second = job.lru_send_many("small", [(("small",), None)] * 2)
    assert job.get_client_metadata("small")["pending_tasks"] == 4
    assert job.set_max_backlog("small", None) is True
    last = job.lru_send("small", "small")
    with rig.workers(threads=2):
        assert [rig.result(message) for message in first + second + [last]] == ["small"] * 5
    ran = {run.id for run in rig.runs()}
    assert len(ran) == 5 and refused_message.message_id not in ran
    with pytest.raises(ResultMissing):
        rig.backend.get_result(refused_message, block=False)


def test_purged_and_revoked_calls_never_run_and_fail_with_call_revoked(rig: Rig) -> None:
    job = rig.declare()
    for broker in rig.brokers:

        def revoked_hook(message_data: Any, exception_data: Any) -> None:
            pass

        dramatiq.actor(revoked_hook, broker=broker)
    junk = [job.lru_send("junk", "junk") for _ in range(4)]
    junk.append(job.lru_send_with_options("junk", ("junk",), on_failure="revoked_hook"))
    keep = job.lru_send("keep", "keep")
    queued = rig.queued()
    assert job.revoke_call(junk[0].message_id) is True
    assert job.revoke_call(junk[0].message_id) is False  # no longer waits
    assert job.purge_key("junk") == 4
    assert job.purge_key("junk") == 0
    for message, reason in zip(junk, ["revoked"] + ["purged"] * 4):
        with pytest.raises(ResultFailure) as failure:
            rig.backend.get_result(message, block=False)
        assert failure.value.orig_exc_type == CallRevoked.__name__
        assert f"was {reason} before it ran" in str(failure.value)
    assert job.get_client_metadata("junk")["pending_tasks"] == 0
    # it never ran: as for a message AgeLimit skips, Callbacks sends no on_failure
    assert rig.queued() == queued
    with rig.workers(threads=2):
        assert rig.result(keep) == "keep"
    assert [run.key for run in rig.runs()] == ["keep"]
    assert job.revoke_call(keep.message_id) is False  # it ran
    assert job.get_system_status()["backlog_size"] == 0


def test_defaults_on_lru_actor_limit_every_key_without_its_own(rig: Rig) -> None:
    job = rig.declare(default_concurrency_limit=1, default_rate_limit="50/s")
    meta = job.get_client_metadata("any")
    assert (meta["concurrency_limit"], meta["rate_limit"]) == (1, "50/s")
    job.set_concurrency_limit("wide", 3)
    assert job.get_client_metadata("wide")["concurrency_limit"] == 3  # its own setting wins
    sent = [job.lru_send(key, key, 0.1) for key in ("a", "b", "wide") for _ in range(4)]
    with rig.workers(threads=3):
        assert sorted(rig.result(message) for message in sent) == sorted(["a", "b", "wide"] * 4)
    assert max_overlap(rig.runs("a")) == 1 and max_overlap(rig.runs("b")) == 1
    assert max_overlap(rig.runs("wide")) <= 3
    job.set_concurrency_limit("wide", None)  # back to the default
    assert job.get_client_metadata("wide")["concurrency_limit"] == 1


# -- across processes -----------------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
def test_a_cap_holds_across_worker_processes(
    redis_url: str, testapp: ModuleType, cli_workers: Any, wait: Any
) -> None:
    # three processes that each run one message at a time (prefetch 1): a cap
    # of 2 is reached only by two processes at once, and never by three
    client = redis.Redis.from_url(redis_url)
    for _ in range(3):
        cli_workers.start(threads=2, prefetch=1)
    wait(lambda: int(client.get(testapp.READY) or 0) >= 3, timeout=30)
    broker, _ = testapp.build(redis_url)
    timed = broker.get_actor("timed_call")
    timed.set_concurrency_limit("capped", 2)
    sent = [timed.lru_send("capped", "capped", 0.2) for _ in range(12)]
    sent += [timed.lru_send(f"free{n}", f"free{n}", 0.2) for n in range(4)]
    wait(lambda: client.llen(testapp.TIMED) >= len(sent), timeout=20)
    runs = [Run(**json.loads(raw)) for raw in client.lrange(testapp.TIMED, 0, -1)]
    capped = [run for run in runs if run.key == "capped"]
    assert {run.id for run in runs} == {message.message_id for message in sent}
    assert max_overlap(capped) == 2
    for pid in {run.pid for run in runs}:
        assert max_overlap([run for run in runs if run.pid == pid]) == 1  # one at a time per process
    wait(lambda: timed.get_client_metadata("capped")["running"] == 0, timeout=10)
    broker.close()
    client.close()


# -- declarations and bad input ---------------------------------------------------


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.add_middleware(Ranch(lease_seconds=5))
    yield broker
    broker.close()


def test_conflicting_defaults_for_one_backlog(stub: StubBroker) -> None:
    @lru_actor(broker=stub, default_concurrency_limit=2, default_rate_limit="1/s")
    def first() -> None:
        pass

    @lru_actor(broker=stub)  # a joiner may leave them unset
    def joins() -> None:
        pass

    @lru_actor(broker=stub, default_concurrency_limit=2, default_rate_limit="60/m")  # the same rate
    def agrees() -> None:
        pass

    assert first.dispatcher is joins.dispatcher is agrees.dispatcher
    with pytest.raises(BacklogConflict, match="default_concurrency_limit=3"):

        @lru_actor(broker=stub, default_concurrency_limit=3)
        def other_cap() -> None:
            pass

    with pytest.raises(BacklogConflict, match="default_rate_limit='2/s'"):

        @lru_actor(broker=stub, default_rate_limit="2/s")
        def other_rate() -> None:
            pass

    @lru_actor(broker=stub, queue_name="free")
    def unlimited() -> None:
        pass

    with pytest.raises(BacklogConflict, match="default_rate_limit=None"):

        @lru_actor(broker=stub, queue_name="free", default_rate_limit="2/s")
        def late_rate() -> None:
            pass

    assert {"other_cap", "other_rate", "late_rate"}.isdisjoint(stub.get_declared_actors())


class NoControls(InMemoryStorage):
    """An in-memory storage without per-key controls (a storage written before them)."""

    set_control = None
    purge_key = None
    revoke = None


@pytest.mark.parametrize(
    ("options", "error", "argument"),
    [
        ({"default_concurrency_limit": 0}, ValueError, "default_concurrency_limit"),
        ({"default_concurrency_limit": "2"}, TypeError, "default_concurrency_limit"),
        ({"default_concurrency_limit": True}, TypeError, "default_concurrency_limit"),
        ({"default_concurrency_limit": 1.5}, TypeError, "default_concurrency_limit"),
        ({"default_rate_limit": "fast"}, ValueError, "default_rate_limit"),
        ({"default_rate_limit": "10/d"}, ValueError, "default_rate_limit"),
        ({"default_rate_limit": "0/s"}, ValueError, "default_rate_limit"),
        ({"default_rate_limit": 10}, TypeError, "default_rate_limit"),
        ({"default_concurrency_limit": 2, "storage": "no controls"}, TypeError, "default_concurrency_limit"),
        ({"default_rate_limit": "1/s", "storage": "no controls"}, TypeError, "default_rate_limit"),
    ],
)
def test_bad_defaults_name_the_argument_and_declare_nothing(
    stub: StubBroker, options: Any, error: type, argument: str
) -> None:
    if options.get("storage") == "no controls":
        options = dict(options, storage=NoControls(serializer=EncoderSerializer()))
    with pytest.raises(error, match=argument):

        @lru_actor(broker=stub, **options)
        def job() -> None:
            pass

    assert "job" not in stub.get_declared_actors()
    assert Ranch.of(stub).backlogs() == []


def test_a_storage_without_controls_runs_calls_and_refuses_controls(
    stub: StubBroker, run_worker: Any
) -> None:
    backend = StubBackend()
    stub.add_middleware(Results(backend=backend))

    @lru_actor(broker=stub, storage=NoControls(serializer=EncoderSerializer()), store_results=True)
    def job(n: int) -> int:
        return n

    messages = [job.lru_send(f"k{n % 2}", n) for n in range(4)]
    with run_worker(stub, threads=2):
        assert [
            message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) for message in messages
        ] == [
            0,
            1,
            2,
            3,
        ]
    with pytest.raises(TypeError, match="no per-key controls"):
        job.set_concurrency_limit("k0", 1)


def test_bad_control_input_names_the_argument_and_changes_nothing(stub: StubBroker) -> None:
    @lru_actor(broker=stub)
    def job() -> None:
        pass

    bad: List[Any] = [
        (ValueError, "limit", lambda: job.set_concurrency_limit("k", 0)),
        (TypeError, "limit", lambda: job.set_concurrency_limit("k", "2")),
        (ValueError, "rate", lambda: job.set_rate_limit("k", "10/d")),
        (TypeError, "rate", lambda: job.set_rate_limit("k", 10)),
        (ValueError, "burst", lambda: job.set_rate_limit("k", "10/s", burst=0)),
        (ValueError, "limit", lambda: job.set_max_backlog("k", -1)),
        (ValueError, "key", lambda: job.pause_key("")),
        (TypeError, "key", lambda: job.resume_key(None)),  # type: ignore[arg-type]
        (TypeError, "key", lambda: job.purge_key(b"k")),  # type: ignore[arg-type]
        (TypeError, "task_id", lambda: job.revoke_call(5)),  # type: ignore[arg-type]
    ]
    for kind, argument, call in bad:
        with pytest.raises(kind, match=argument):
            call()
    meta = job.get_client_metadata("k")
    assert (meta["concurrency_limit"], meta["rate_limit"], meta["paused"], meta["max_backlog"]) == (
        None,
        None,
        False,
        None,
    )


def test_a_malformed_call_that_is_purged_is_logged(stub: StubBroker, caplog: Any) -> None:
    # a stored call that cannot be decoded still leaves the backlog when purged
    @lru_actor(broker=stub)
    def job() -> None:
        pass

    job.dispatcher.scheduler.push("k", {"args": "not a list"})
    assert job.purge_key("k") == 1
    assert "purged call" in caplog.text and "is malformed" in caplog.text


def test_delayed_wake_up_is_a_dramatiq_delay(stub: StubBroker) -> None:
    @lru_actor(broker=stub)
    def job() -> None:
        pass

    backlog = job._ranch_backlog
    backlog.wake_later("token-1", 0.0004)
    backlog.wake_later("token-2", 1.2)
    delayed = [dramatiq.Message.decode(raw) for raw in stub.queues["default.DQ"].queue]
    assert [list(message.args) for message in delayed] == [["default", "token-1"], ["default", "token-2"]]
    early, late = (message.options["eta"] - message.message_timestamp for message in delayed)
    assert early >= 1 and late >= 1200  # whole milliseconds, rounded up
