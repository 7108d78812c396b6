"""``python -m ranch_dramatiq.demo``: the flood-vs-quiet comparison on Dramatiq.

The workload, the recording and the report are :mod:`ranch_core.demo`'s
(shared with ranch-celery); this module is its Dramatiq backend
(:func:`run`). With no ``--redis`` it needs no server: a ``StubBroker``, a
``dramatiq.Worker`` with ``--workers`` threads in this process and in-memory
storage. With ``--redis URL`` it starts ``--workers`` worker processes
(``python -m dramatiq ranch_dramatiq.demo_app``, one thread each) on that
Redis. Plain mode sends with ``.send()``, fair mode with ``.lru_send()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, List, Optional, Sequence

import dramatiq
from dramatiq.brokers.stub import StubBroker
from ranch_core.demo.cli import main as demo_main
from ranch_core.demo.execution import Execution
from ranch_core.demo.stats import MODES, RunResult
from ranch_core.demo.workload import Submission, Workload, drive

from ranch_dramatiq import demo_app
from ranch_dramatiq.actor import LRUActor

#: Seconds to wait for worker processes to boot.
BOOT_TIMEOUT = 60.0


def submitter(actor: LRUActor, mode: str, work_seconds: float) -> Callable[[Submission], None]:
    """How one demo call is sent: ``.send()`` (plain) or ``.lru_send()`` keyed by its key (fair)."""

    def plain(s: Submission) -> None:
        actor.send(s.key, s.index, s.submitted_at, work_seconds)

    def fair(s: Submission) -> None:
        actor.lru_send(s.key, s.key, s.index, s.submitted_at, work_seconds)

    return plain if mode == "plain" else fair


def run(workload: Workload, mode: str, *, redis_url: Optional[str] = None, workers: int = 2) -> RunResult:
    """Run ``workload`` once in ``mode`` (``"plain"`` or ``"fair"``); see the module docstring."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if redis_url is None:
        return _run_in_process(workload, mode, workers)
    return _run_on_redis(workload, mode, redis_url, workers)


def _deadline(workload: Workload, workers: int) -> float:
    return time.monotonic() + 60.0 + 5 * workload.total * workload.work_seconds / workers


def _result(mode: str, executions: Sequence[Execution], backend: str, workers: int) -> RunResult:
    elapsed = 0.0
    if executions:
        elapsed = max(e.finished_at for e in executions) - min(e.submitted_at for e in executions)
    records: Any = list(executions)  # RunResult converts to a tuple
    return RunResult(mode=mode, executions=records, elapsed=elapsed, backend=backend, workers=workers)


def _run_in_process(workload: Workload, mode: str, workers: int) -> RunResult:
    broker = StubBroker()
    executions: List[Execution] = []
    lock = threading.Lock()

    def record(execution: Execution) -> None:
        with lock:
            executions.append(execution)

    actor = demo_app.build(broker, record)
    worker = dramatiq.Worker(broker, worker_threads=workers, worker_timeout=100)
    worker.start()
    try:
        drive(workload, submitter(actor, mode, workload.work_seconds))
        deadline = _deadline(workload, workers)
        while len(executions) < workload.total and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop(timeout=10_000)
        broker.close()
    return _result(mode, executions, "dramatiq, StubBroker in-process", workers)


def _run_on_redis(workload: Workload, mode: str, redis_url: str, workers: int) -> RunResult:
    run_id = uuid.uuid4().hex[:12]
    broker, actor, client = demo_app.redis_app(redis_url, run_id)
    env = dict(os.environ, **{demo_app.ENV_URL: redis_url, demo_app.ENV_RUN: run_id})
    # The consumers poll every 0.1 s, not Dramatiq's 1 s, so each run's workers stop sooner.
    env.setdefault("dramatiq_worker_timeout", "100")
    command = [sys.executable, "-m", "dramatiq", "ranch_dramatiq.demo_app", "--skip-logging"]
    command += ["--processes", str(workers), "--threads", "1"]
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    records = demo_app.executions_key(run_id)
    try:
        boot_deadline = time.monotonic() + BOOT_TIMEOUT
        while int(client.get(demo_app.ready_key(run_id)) or 0) < workers:
            if proc.poll() is not None or time.monotonic() > boot_deadline:
                raise RuntimeError("the demo's dramatiq worker processes did not start")
            time.sleep(0.05)
        drive(workload, submitter(actor, mode, workload.work_seconds))
        deadline = _deadline(workload, workers)
        while client.llen(records) < workload.total and time.monotonic() < deadline:
            time.sleep(0.02)
        executions = [Execution.from_json(line) for line in client.lrange(records, 0, -1)]
    finally:
        _stop(proc)
        _cleanup(client, run_id)
        broker.close()
        client.close()
    return _result(mode, executions, "dramatiq, RedisBroker", workers)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the dramatiq main process (it stops its workers), then make sure of it."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left of the process group
    if proc.poll() is None:
        proc.wait()


def _cleanup(client: object, run_id: str) -> None:
    """Delete every Redis key of the run (queues, backlog, records)."""
    namespace = demo_app.broker_namespace(run_id)
    for pattern in (f"{namespace}*", f"ranch:{{{namespace}:*", f"ranch-demo:{run_id}:*"):
        keys = list(client.scan_iter(match=pattern, count=500))  # type: ignore[attr-defined]
        if keys:
            client.delete(*keys)  # type: ignore[attr-defined]
    from ranch_redis.inspection import forget_backlogs

    forget_backlogs(client, namespace)  # `ranch backlogs` lists it no more


def main(argv: Optional[Sequence[str]] = None, *, out: Any = None) -> int:
    """The ``ranch-demo`` command line with Dramatiq as the default backend."""
    return demo_main(argv, default_backend="dramatiq", prog="python -m ranch_dramatiq.demo", out=out)


if __name__ == "__main__":
    sys.exit(main())
