"""One run of the ``limits`` scenario: :func:`run_limits` (worker threads on the in-memory storage).

No task queue and no server: a :class:`~ranch_core.FairScheduler` on its
embedded in-memory storage, ``workers`` threads that block in
``pop(timeout=...)``, run the call (:func:`~ranch_core.demo.execution.perform`)
and ``ack`` it, and this thread as the producer. Every time is
``time.monotonic()``: one process, one clock.
"""

from __future__ import annotations

import threading
import time
from typing import List, Optional, Tuple

from ranch_core.demo.execution import Execution, perform
from ranch_core.demo.limits_stats import LIMITS_MODES, LimitsRun
from ranch_core.demo.limits_workload import LimitsWorkload
from ranch_core.keys import one_level
from ranch_core.scheduler import FairScheduler

#: Seconds a run may take beyond its work before it is given up.
SLACK_SECONDS = 60.0
#: How long an idle worker blocks in one ``pop`` before it looks whether the run is over.
POP_TIMEOUT = 0.05


def _deadline(workload: LimitsWorkload, workers: int, started: float) -> float:
    rate = workload.rate_limit.per_second
    limited = max(
        workload.bulk_calls * workload.work_seconds / workload.bulk_limit,
        workload.rate_calls / rate,
        workload.resume_after,
    )
    return started + SLACK_SECONDS + 3 * (limited + workload.total * workload.work_seconds / workers)


def run_limits(workload: LimitsWorkload, mode: str, *, workers: int = 8) -> LimitsRun:
    """Run ``workload`` once: ``mode`` ``"free"`` without controls, ``"limited"`` with them.

    The producer sends the flood, the rate-limited and the paused key's calls,
    then (after ``interactive_delay``) the interactive calls; in the limited
    run it calls ``resume_key`` ``resume_after`` seconds after the first send.
    Returns when every call ran; ``RuntimeError`` if that takes far longer
    than the work needs.
    """
    if mode not in LIMITS_MODES:
        raise ValueError(f"mode must be one of {LIMITS_MODES}, got {mode!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    scheduler = FairScheduler()
    if mode == "limited":
        workload.apply(scheduler)
    records: List[Execution] = []
    lock = threading.Lock()
    done = threading.Event()
    stop = threading.Event()

    def work(name: str) -> None:
        while not stop.is_set():
            task = scheduler.pop(timeout=POP_TIMEOUT)
            if task is None:
                continue
            payload = task.payload
            record = perform(
                one_level(task.key),
                payload["index"],
                payload["submitted_at"],
                workload.work_seconds,
                worker=name,
                clock=time.monotonic,
            )
            with lock:  # noted before the ack, so the lease outlives the record
                records.append(record)
                if len(records) >= workload.total:
                    done.set()
            scheduler.ack(task.task_id)

    threads = [threading.Thread(target=work, args=(f"thread{n}",), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    first, interactive = workload.plan()
    started = time.monotonic()
    resumed_at: Optional[float] = None
    try:
        for key, index in first:
            scheduler.push(key, {"index": index, "submitted_at": time.monotonic()})
        time.sleep(workload.interactive_delay)
        for key, index in interactive:
            scheduler.push(key, {"index": index, "submitted_at": time.monotonic()})
        if mode == "limited":
            time.sleep(max(0.0, started + workload.resume_after - time.monotonic()))
            resumed_at = time.monotonic()
            scheduler.resume_key(workload.paused_key)
        if not done.wait(max(0.0, _deadline(workload, workers, started) - time.monotonic())):
            raise RuntimeError(f"limits run timed out: {len(records)}/{workload.total} calls ran")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    elapsed = max(e.finished_at for e in records) - started
    return LimitsRun(mode, records, started=started, elapsed=elapsed, resumed_at=resumed_at, workers=workers)


def run_free_and_limited(workload: LimitsWorkload, *, workers: int = 8) -> Tuple[LimitsRun, LimitsRun]:
    """The same calls without controls, then with them: ``(free, limited)``."""
    return run_limits(workload, "free", workers=workers), run_limits(workload, "limited", workers=workers)
