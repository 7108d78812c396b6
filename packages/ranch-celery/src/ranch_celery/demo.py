"""``ranch-demo``: the same flood twice on Celery, plain ``.delay`` vs ``lru_delay``.

With no options it needs no server: Celery on the ``memory://`` broker, an
in-process solo worker and in-memory storage. ``--redis URL --workers N``
runs the same against a real Redis with N ``celery worker`` processes.
``--backend dramatiq`` hands over to ``ranch_dramatiq.demo``. The workload,
the recording and the report are :mod:`ranch_core.demo`'s; this module only
implements its backend interface, :func:`run`.

A run on Redis leaves nothing behind: the workers' log lives in a temporary
folder (its tail is in the error if the workers fail), and every Redis key of
the run (its queue, its Ranch backlog, its records) is deleted at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

from ranch_core.demo.cli import main as demo_main
from ranch_core.demo.execution import Execution
from ranch_core.demo.stats import MODES, RunResult
from ranch_core.demo.workload import Submission, Workload, drive

#: Seconds a run may take beyond the work itself before the demo gives up.
SLACK_SECONDS = 60.0


def _deadline(workload: Workload, workers: int) -> float:
    return time.monotonic() + SLACK_SECONDS + 3 * workload.total * workload.work_seconds / max(1, workers)


def _sender(app: Any, mode: str, sink: str, work: float) -> Callable[[Submission], None]:
    from ranch_celery.demo_app import FAIR_TASK, PLAIN_TASK

    if mode == "plain":
        plain = app.tasks[PLAIN_TASK]

        def send_plain(sub: Submission) -> None:
            plain.delay(sink, sub.key, sub.index, sub.submitted_at, work)

        return send_plain
    fair = app.tasks[FAIR_TASK]

    def send_fair(sub: Submission) -> None:
        fair.lru_delay(sub.key, sink, sub.key, sub.index, sub.submitted_at, work)

    return send_fair


def run_in_process(workload: Workload, mode: str) -> RunResult:
    """One run on ``memory://`` with an in-process solo worker (no server)."""
    from ranch_celery.demo_app import MEMORY_SINKS, make_demo_app
    from ranch_celery.inprocess import in_process_worker

    run_id = uuid.uuid4().hex[:12]
    app = make_demo_app("memory://", run_id)
    sink = f"sink-{run_id}"
    records = MEMORY_SINKS.setdefault(sink, [])
    try:
        with in_process_worker(app, hostname=f"ranch-demo-{mode}@localhost"):
            started = time.time()
            drive(workload, _sender(app, mode, sink, workload.work_seconds))
            deadline = _deadline(workload, 1)
            while len(records) < workload.total:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"demo run timed out: {len(records)}/{workload.total} calls ran")
                time.sleep(0.01)
            elapsed = max(e.finished_at for e in records) - started
        return RunResult(mode, list(records), elapsed=elapsed, backend="celery memory://", workers=1)
    finally:
        MEMORY_SINKS.pop(sink, None)


def _start_workers(redis_url: str, run_id: str, workers: int, log: Any) -> List[subprocess.Popen[bytes]]:
    from ranch_celery.demo_app import queue_name

    env = dict(os.environ, RANCH_DEMO_REDIS_URL=redis_url, RANCH_DEMO_RUN=run_id)
    processes = []
    for number in range(workers):
        command = [
            sys.executable, "-m", "celery", "-A", "ranch_celery.demo_app", "worker",
            "-P", "solo", "-c", "1", "-n", f"ranch-demo-{number}-{run_id}@%h", "-Q", queue_name(run_id),
            "--prefetch-multiplier", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-l", "WARNING",
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    return processes


def _stop_workers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def delete_run_keys(client: Any, run_id: str) -> int:
    """Delete every Redis key of demo run ``run_id``; return how many there were.

    Each name the run creates holds its run id: the Celery queue and its
    binding (``ranch-demo-<id>``), the Ranch backlog's namespace (named after
    the queue) and the records (``ranch-demo:<id>:...``).
    """
    from ranch_redis.inspection import forget_backlogs

    keys = list(client.scan_iter(match=f"*ranch-demo[-:]{run_id}*", count=1000))
    if keys:
        client.delete(*keys)
    forget_backlogs(client, f"ranch-demo-{run_id}")  # `ranch backlogs` lists it no more
    return len(keys)


def run_on_redis(workload: Workload, mode: str, redis_url: str, workers: int) -> RunResult:
    """One run on a real Redis with ``workers`` solo ``celery worker`` processes."""
    import redis

    from ranch_celery.demo_app import make_demo_app, ready_key

    run_id = uuid.uuid4().hex[:12]
    sink = f"ranch-demo:{run_id}:executions"
    client = redis.Redis.from_url(redis_url)
    app = make_demo_app(redis_url, run_id)
    folder = tempfile.TemporaryDirectory(prefix="ranch-demo-")
    log_path = Path(folder.name) / f"workers-{mode}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    processes = _start_workers(redis_url, run_id, workers, log)
    try:
        deadline = time.monotonic() + 60
        while client.llen(ready_key(run_id)) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                tail = _log_tail(log_path)
                raise RuntimeError(f"demo workers did not start; their output ends with:\n{tail}")
            time.sleep(0.05)
        started = time.time()
        drive(workload, _sender(app, mode, sink, workload.work_seconds))
        deadline = _deadline(workload, workers)
        while client.llen(sink) < workload.total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"demo run timed out: {client.llen(sink)}/{workload.total} calls ran")
            time.sleep(0.02)
        records = [Execution.from_json(item) for item in client.lrange(sink, 0, -1)]
        elapsed = max(e.finished_at for e in records) - started
        return RunResult(mode, records, elapsed=elapsed, backend="celery redis", workers=workers)
    finally:
        _stop_workers(processes)
        log.close()
        folder.cleanup()
        delete_run_keys(client, run_id)
        client.close()
        app.close()


def run(workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult:
    """The :class:`ranch_core.demo.DemoBackend` interface for Celery."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if redis_url is None:
        return run_in_process(workload, mode)
    return run_on_redis(workload, mode, redis_url, workers)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``ranch-demo`` and ``python -m ranch_celery.demo``."""
    return demo_main(argv, default_backend="celery", prog="ranch-demo")


if __name__ == "__main__":
    sys.exit(main())
