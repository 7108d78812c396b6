"""Per-key controls with a thread pool: a capped flood, a rate-limited API
tenant, a paused tenant resumed later, a backlog limit, purge and revoke.

    python examples/per_key_controls.py

Eight worker threads block in ``pop(timeout=...)``; each job "runs" 20 ms.
The run prints what each control did, measured from the jobs' own
timestamps (see the ranch-core README, "Per-key controls").
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Dict, List, Tuple

from ranch_core import BacklogFull, FairScheduler


def run(threads: int = 8, job_seconds: float = 0.02) -> Dict[str, Any]:
    revoked: List[Tuple[str, str]] = []
    scheduler = FairScheduler(on_revoked=lambda task, reason: revoked.append((task.key, reason)))
    scheduler.set_concurrency_limit("bulk", 2)  # at most 2 bulk jobs at once
    scheduler.set_rate_limit("api", "10/s", burst=3)  # a partner API: 10 calls/s, 3 at once
    scheduler.pause_key("paused")  # held until resumed
    scheduler.set_max_backlog("small", 3)  # at most 3 waiting

    scheduler.push_many("bulk", range(40))
    scheduler.push_many("api", range(15))
    scheduler.push_many("paused", range(3))
    scheduler.push_many("interactive", range(5))
    scheduler.push_many("small", range(3))
    try:
        scheduler.push("small", 3)
    except BacklogFull as exc:
        refused = str(exc)
    junk = scheduler.push_many("junk", range(50))
    scheduler.revoke_call(junk[0])  # one call cancelled
    purged = scheduler.purge_key("junk")  # the rest dropped

    lock = threading.Lock()
    running: Dict[str, int] = defaultdict(int)
    peak: Dict[str, int] = defaultdict(int)
    starts: Dict[str, List[float]] = defaultdict(list)
    origin = time.monotonic()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            task = scheduler.pop(timeout=0.2)
            if task is None:
                continue
            with lock:
                running[task.key] += 1
                peak[task.key] = max(peak[task.key], running[task.key])
                starts[task.key].append(time.monotonic() - origin)
            time.sleep(job_seconds)
            with lock:
                running[task.key] -= 1
            scheduler.ack(task.task_id)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    time.sleep(0.5)
    resumed_at = time.monotonic() - origin
    scheduler.resume_key("paused")
    while len(scheduler) or scheduler.status().leased:
        time.sleep(0.05)
    stop.set()
    for thread in pool:
        thread.join()
    api = starts["api"]
    window = max(sum(1 for t in api if start <= t < start + 1.0) for start in api)
    return {
        "peak": dict(peak),
        "api_in_any_second": window,
        "api_span": api[-1] - api[0],
        "paused_first_start_after_resume": starts["paused"][0] - resumed_at,
        "interactive_done_by": max(starts["interactive"]),
        "refused": refused,
        "purged": purged,
        "revoked": sorted(set(revoked)),
        "status": scheduler.status().to_dict(),
    }


if __name__ == "__main__":
    result = run()
    print(f"bulk: at most {result['peak']['bulk']} running at once (limit 2) of 8 threads")
    print(
        f"api: at most {result['api_in_any_second']} started in any 1 s (10/s, burst 3); "
        f"15 calls spread over {result['api_span']:.2f} s"
    )
    after = result["paused_first_start_after_resume"] * 1000
    print(f"paused: first call started {after:.1f} ms after resume_key")
    print(f"interactive: all 5 started by {result['interactive_done_by'] * 1000:.0f} ms")
    print(f"small: {result['refused']}")
    print(f"junk: 1 revoked, {result['purged']} purged; reported {result['revoked']}")
    print(f"status: {result['status']}")
