"""Fixtures of the ranch-celery tests: real ``celery worker`` subprocesses on the test Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the worker app module, also for the test process


class Worker:
    """One ``celery worker`` subprocess in its own process group."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.process = process
        self.log = log
        self.name = name

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.reap()

    def reap(self) -> None:
        """Wait for the stop asked by SIGTERM (SIGKILL after 10 s), then end the whole group."""
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(10)
        # Pool children may outlive a killed parent: end the whole group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ``celery -A ranch_celery_testapp worker`` subprocesses; all stopped at teardown."""
    workers: List[Worker] = []
    client = redis.Redis.from_url(redis_url)

    def start(
        name: str = "w1",
        pool: str = "solo",
        concurrency: int = 1,
        env: Optional[Dict[str, str]] = None,
        queues: Optional[str] = None,
        wait: bool = True,
        app_module: str = "ranch_celery_testapp",
        global_args: Sequence[str] = (),
        loglevel: str = "INFO",
    ) -> Worker:
        log = tmp_path / f"{name}.log"
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")])
        environment["RANCH_TEST_REDIS_URL"] = redis_url
        environment.update(env or {})
        command = [
            sys.executable, "-m", "celery", "-A", app_module, *global_args, "worker",
            "-P", pool, "-c", str(concurrency), "-n", f"{name}@ranchtest",
            "--prefetch-multiplier", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-l", loglevel,
        ]  # fmt: skip
        if queues:
            command += ["-Q", queues]
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                command, env=environment, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(process, log, f"{name}@ranchtest")
        workers.append(worker)
        if wait:
            deadline = time.monotonic() + 30
            while worker.name.encode() not in client.lrange("ready", 0, -1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{worker.log_tail()}")
                time.sleep(0.05)
        return worker

    yield start
    # All asked at once: each warm shutdown takes about a second.
    for worker in workers:
        worker.kill(signal.SIGTERM)
    for worker in workers:
        worker.reap()
    client.close()


@pytest.fixture
def rec(redis_url: str) -> Iterator[Any]:
    """A Redis client on the test server (for the tasks' records)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
