"""The Dramatiq app the multi-process tests run under the ``dramatiq`` CLI.

Imported by worker processes (``dramatiq ranch_dramatiq_testapp --path
<this dir>``) with ``RANCH_DQ_REDIS_URL`` set, and by the tests themselves
(:func:`build`, to send calls as a producer). Every run of ``record_call``
is written to Redis: ``started`` (list of ``"<pid> <message id>"``) and
``finished`` (hash: message id -> number of completed runs).

``RANCH_DQ_PAUSE`` makes a worker process stop for good at one step of a
call, so that a test can SIGKILL it there: ``taken`` (the wake-up's token is
held and the call leased, the actor not started), ``running`` (inside the
actor), ``finishing`` (the call acknowledged, its token not yet passed on
through the broker). The process writes ``"<pid> <phase>"`` to ``paused``
when it gets there. ``RANCH_DQ_BUDGET`` and ``RANCH_DQ_MAX_WAKEUPS`` set the
``Ranch`` middleware's run budget and ``max_wakeups``.

``timed_call(key, seconds)`` (the per-key controls' tests) writes one JSON
row per run to ``timed`` (:func:`record_timed`): its key, start and end
(``time.time()``), pid, message id and retry count.

``key_seen(label)`` (the two-level keys' tests) writes ``[label, repr of
current_key(), retries]`` (JSON) per run to ``keys``, and fails its first run
when the label starts with ``retry`` (one retry, after 200 ms).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Tuple

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, GroupCallbacks, Middleware
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch, current_key, lru_actor

STARTED = "ranch-test:started"
FINISHED = "ranch-test:finished"
READY = "ranch-test:ready"
PAUSED = "ranch-test:paused"
TIMED = "ranch-test:timed"
KEYS = "ranch-test:keys"
PHASES = ("taken", "running", "finishing")


class PauseAt(Middleware):
    """Stops this worker process for good at ``phase`` of a ``record_call`` call (a test kills it there)."""

    def __init__(self, client: Any, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"RANCH_DQ_PAUSE must be one of {PHASES}, not {phase!r}")
        self.client = client
        self.phase = phase
        self.local = threading.local()

    def hold(self, phase: str) -> None:
        if phase == self.phase:
            self.client.rpush(PAUSED, f"{os.getpid()} {phase}")
            threading.Event().wait()  # until SIGKILL

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name == "record_call":
            self.hold("taken")

    def after_ack(self, broker: Any, message: Any) -> None:
        if message.actor_name == "record_call":
            self.local.finished = True

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        if message.actor_name.startswith("ranch_wake_up:") and getattr(self.local, "finished", False):
            self.hold("finishing")


class CountReady(Middleware):
    """Counts worker processes that finished booting (tests wait for all of them)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.client.incr(READY)


def record_timed(recorder: Any, key: str, seconds: float) -> str:
    """The body of a timed call: run for ``seconds``, then write when it started and
    ended (wall clock, comparable across processes) to :data:`TIMED`; returns ``key``."""
    start = time.time()
    message = CurrentMessage.get_current_message()
    assert message is not None
    if seconds:
        time.sleep(seconds)
    row = {
        "key": key,
        "start": start,
        "end": time.time(),
        "pid": os.getpid(),
        "id": message.message_id,
        "retries": message.options.get("retries", 0),
    }
    recorder.rpush(TIMED, json.dumps(row))
    return key


def build(
    url: str,
    *,
    lease_seconds: float = 10.0,
    heartbeat_ms: int = 60000,
    pause: str = "",
    budget: int = 8,
    max_wakeups: int = 64,
) -> Tuple[RedisBroker, Any]:
    """A broker with Results, GroupCallbacks, CurrentMessage and Ranch, and the
    ``record_call`` actor (``add_numbers`` too, for pipelines and groups,
    ``timed_call``, for the per-key controls, and ``key_seen``, for two-level keys)."""
    broker = RedisBroker(url=url, heartbeat_timeout=heartbeat_ms)
    broker.add_middleware(Results(backend=RedisBackend(url=url)))
    broker.add_middleware(GroupCallbacks(RateLimiterBackend(url=url)))
    broker.add_middleware(CurrentMessage())
    ranch = Ranch(
        lease_seconds=lease_seconds,
        sweep_interval=lease_seconds / 4,
        wakeup_budget=budget,
        max_wakeups=max_wakeups,
    )
    broker.add_middleware(ranch)
    recorder = redis.Redis.from_url(url)
    broker.add_middleware(CountReady(recorder))
    pause_at = PauseAt(recorder, pause) if pause else None
    if pause_at is not None:
        broker.add_middleware(pause_at)

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def record_call(label: str, seconds: float = 0.0) -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        recorder.rpush(STARTED, f"{os.getpid()} {message.message_id}")
        if pause_at is not None:
            pause_at.hold("running")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        recorder.hincrby(FINISHED, message.message_id, 1)
        return label

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def timed_call(key: str, seconds: float = 0.0) -> str:
        return record_timed(recorder, key, seconds)

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def add_numbers(a: int, b: int = 0) -> int:
        recorder.rpush("ranch-test:added", f"{os.getpid()} {a}+{b}")
        return a + b

    @lru_actor(broker=broker, store_results=True, max_retries=1, min_backoff=200, max_backoff=200)
    def key_seen(label: str, *_previous: Any) -> str:
        # The two-level keys tests: the key as the running call sees it (``repr`` keeps a
        # tuple apart from a list). A pipeline's later step gets the previous result last.
        message = CurrentMessage.get_current_message()
        assert message is not None
        retries = message.options.get("retries", 0)
        recorder.rpush(KEYS, json.dumps([label, repr(current_key()), retries]))
        if label.startswith("retry") and retries == 0:
            raise RuntimeError("once")  # Retries: the retry waits in the broker (JSON), then is stored again
        return label

    return broker, record_call


if "RANCH_DQ_REDIS_URL" in os.environ:
    broker, record_call = build(
        os.environ["RANCH_DQ_REDIS_URL"],
        lease_seconds=float(os.environ.get("RANCH_DQ_LEASE", "10")),
        heartbeat_ms=int(os.environ.get("RANCH_DQ_HEARTBEAT_MS", "60000")),
        pause=os.environ.get("RANCH_DQ_PAUSE", ""),
        budget=int(os.environ.get("RANCH_DQ_BUDGET", "8")),
        max_wakeups=int(os.environ.get("RANCH_DQ_MAX_WAKEUPS", "64")),
    )
    dramatiq.set_broker(broker)
