"""Fixtures of the ranch-dramatiq tests: in-process workers and ``dramatiq`` CLI workers."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, List, Tuple

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch

HERE = Path(__file__).resolve().parent
DRAMATIQ = str(Path(sys.executable).with_name("dramatiq"))


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@contextmanager
def running_worker(broker: dramatiq.Broker, threads: int = 1) -> Iterator[dramatiq.Worker]:
    """A real ``dramatiq.Worker`` in this process, stopped on exit."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=50)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10_000)


@pytest.fixture(scope="session")
def testapp() -> ModuleType:
    """``ranch_dramatiq_testapp``, the module the CLI workers import."""
    path = HERE / "ranch_dramatiq_testapp.py"
    spec = importlib.util.spec_from_file_location("ranch_dramatiq_testapp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CliWorkers:
    """``dramatiq`` CLI worker processes on the test app; all killed at teardown."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.procs: List[subprocess.Popen[bytes]] = []

    def start(
        self,
        *,
        processes: int = 1,
        threads: int = 2,
        lease: float = 10.0,
        prefetch: int = 0,
        **settings: str,
    ) -> subprocess.Popen[bytes]:
        """Start one ``dramatiq`` CLI on the test app; ``settings`` are
        ``RANCH_DQ_*`` variables by their lower-case suffix (``pause="taken"``)."""
        env = dict(os.environ)
        env.update(
            RANCH_DQ_REDIS_URL=self.redis_url,
            RANCH_DQ_LEASE=str(lease),
            RANCH_DQ_HEARTBEAT_MS="3000",
            dramatiq_worker_timeout="100",
            dramatiq_restart_delay="300",  # a consumer that lost Redis retries after 0.3 s, not 3 s
        )
        if prefetch:
            env["dramatiq_queue_prefetch"] = str(prefetch)
        env.update({f"RANCH_DQ_{name.upper()}": value for name, value in settings.items()})
        command = [
            DRAMATIQ,
            "ranch_dramatiq_testapp",
            "--path", str(HERE),
            "--processes", str(processes),
            "--threads", str(threads),
            "--skip-logging",
        ]  # fmt: skip
        proc = subprocess.Popen(
            command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # the dramatiq main process stops its workers
        # A main process whose child was SIGKILLed by the test may never exit on its own:
        # a few seconds for a clean stop of the worker processes (and their coverage data),
        # then the whole group goes. The main process runs no Ranch code, and takes up to
        # 2 s more to exit after its workers (its poll loops), so it is not waited for.
        deadline = time.monotonic() + 3
        for proc in self.procs:
            while proc.poll() is None and time.monotonic() < deadline and _workers_alive(proc.pid):
                time.sleep(0.05)
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(5)


def _workers_alive(main_pid: int) -> bool:
    """Whether a process of ``main_pid``'s group other than itself is still running
    (zombies aside); without ``/proc``, until the main process exits."""
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == main_pid:
            continue
        with suppress(OSError):
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            if int(fields[2]) == main_pid and fields[0] != "Z":  # state, ppid, pgrp
                return True
    return False


@pytest.fixture
def cli_workers(redis_url: str) -> Iterator[CliWorkers]:
    """Start ``dramatiq`` CLI workers with ``cli_workers.start(...)``."""
    workers = CliWorkers(redis_url)
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def wait() -> Callable[..., Any]:
    """:func:`wait_until`."""
    return wait_until


@pytest.fixture
def run_worker() -> Callable[..., Any]:
    """:func:`running_worker`: ``with run_worker(broker, threads=1): ...``."""
    return running_worker


@pytest.fixture
def real(redis_url: str) -> Iterator[Tuple[RedisBroker, RedisBackend, redis.Redis]]:
    """A RedisBroker with Results (Redis), CurrentMessage and Ranch, its results backend, a client."""
    broker = RedisBroker(url=redis_url)
    backend = RedisBackend(url=redis_url)
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=10))
    client = redis.Redis.from_url(redis_url)
    yield broker, backend, client
    client.close()
    broker.close()
