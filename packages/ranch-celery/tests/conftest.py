"""Fixtures of the ranch-celery tests: real ``celery worker`` subprocesses on the test Redis."""

from __future__ import annotations

import contextlib
import json
import os
import select
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


class ForkedProcess:
    """The part of :class:`subprocess.Popen` the tests use, for a process the fork server started
    (not a child of this process: its exit is seen through a pidfd, its exit status is not known)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.args = f"forked celery worker {pid}"
        try:
            self._pidfd: Optional[int] = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None
        self._exited = self._pidfd is None

    def _ended(self, timeout: float) -> bool:
        if self._pidfd is not None and select.select([self._pidfd], [], [], timeout)[0]:
            self._exited = True
            os.close(self._pidfd)
            self._pidfd = None
        return self._exited

    def poll(self) -> Optional[int]:
        return -1 if self._ended(0) else None

    def wait(self, timeout: Optional[float] = None) -> int:
        if not self._ended(1e9 if timeout is None else timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return -1


class ForkServer:
    """``ranch_celery_forkserver.py``: forks ``celery worker`` processes that skip the imports."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "ranch_celery_forkserver.py")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def start(self, argv: Sequence[str], env: Dict[str, str], log: Path) -> ForkedProcess:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"argv": list(argv), "env": env, "log": str(log)}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError("the fork server ended")
        return ForkedProcess(int(reply))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def worker_environment() -> Dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")])
    return environment


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    server = ForkServer(worker_environment())
    yield server
    server.close()


class Worker:
    """One ``celery worker`` subprocess in its own process group."""

    def __init__(self, process: Any, log: Path, name: str) -> None:
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
def start_worker(redis_url: str, tmp_path: Path, fork_server: ForkServer) -> Iterator[Callable[..., Worker]]:
    """Start ``celery -A ranch_celery_testapp worker`` subprocesses; all stopped at teardown.

    Forked by the fork server, but for the gevent pool: it patches the standard
    library, which ``python -m celery`` does before anything is imported."""
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
        environment = worker_environment()
        environment["RANCH_TEST_REDIS_URL"] = redis_url
        environment.update(env or {})
        argv = [
            "-A", app_module, *global_args, "worker",
            "-P", pool, "-c", str(concurrency), "-n", f"{name}@ranchtest",
            "--prefetch-multiplier", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-l", loglevel,
        ]  # fmt: skip
        if queues:
            argv += ["-Q", queues]
        process: Any
        if pool == "gevent":
            with open(log, "wb") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "celery", *argv],
                    env=environment,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        else:
            process = fork_server.start(argv, environment, log)
        worker = Worker(process, log, f"{name}@ranchtest")
        workers.append(worker)
        if wait:
            deadline = time.monotonic() + 30
            while worker.name.encode() not in client.lrange("ready", 0, -1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{worker.log_tail()}")
                time.sleep(0.02)
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
