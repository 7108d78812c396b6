"""A thread pool fed by FairScheduler, with weights and expiry, and no polling.

Three tenants have a backlog; eight threads drain it with a blocking
``scheduler.pop(timeout=None)`` while a producer keeps adding short-lived
"reports" jobs. Tenant "vip" has weight 0.5 (twice the service of weight 1.0
while both wait); "reports" jobs expire after 50 ms if nobody got to them.
An idle thread blocks in the storage (a condition in memory, ``BLPOP`` on
Redis) and wakes when a job arrives. When every job has run or expired, one
"stop" job per thread ends the pool. Run: ``python examples/thread_pool.py``
or ``python examples/thread_pool.py redis://localhost:6379/0``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import Any, Dict, List, Optional

from ranch_core import FairScheduler, ScheduledTask

STOP = "stop"


def run(threads: int = 8, per_tenant: int = 300, url: Optional[str] = None) -> Dict[str, Any]:
    """Run the pool; what was served (keys in order), how many expired, the final status."""
    expired: List[ScheduledTask] = []
    served: List[str] = []
    progress = threading.Condition()
    total = 3 * per_tenant + 20

    def on_expired(task: ScheduledTask) -> None:
        with progress:
            expired.append(task)
            progress.notify_all()

    storage: Any = None
    if url is not None:
        import uuid

        from ranch_redis import RedisStorage

        storage = RedisStorage.from_url(url, namespace=f"example-{uuid.uuid4().hex}")
    scheduler = FairScheduler(storage, on_expired=on_expired)
    scheduler.set_weight("vip", 0.5)
    for tenant in ("vip", "free", "batch"):
        scheduler.push_many(tenant, range(per_tenant))

    def produce() -> None:
        for n in range(20):
            scheduler.push("reports", n, expiry=0.05)
            time.sleep(0.002)  # a producer paced by its own work

    def work() -> None:
        while True:
            task = scheduler.pop(timeout=None)  # blocks until a job is runnable
            assert task is not None
            if task.key == STOP:
                scheduler.ack(task.task_id)
                return
            time.sleep(0.0002)  # the job
            with progress:
                served.append(task.key)
                progress.notify_all()
            scheduler.ack(task.task_id)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    producer = threading.Thread(target=produce)
    for thread in pool:
        thread.start()
    producer.start()
    producer.join()
    with progress:
        # Every push wakes a blocked thread, which runs the job or, if it
        # expired, drops and reports it: each job ends one way or the other.
        finished = progress.wait_for(lambda: len(served) + len(expired) == total, timeout=60)
    assert finished, "jobs were left over"
    status = scheduler.status().to_dict()
    scheduler.push_many(STOP, [None] * threads)
    for thread in pool:
        thread.join()
    if storage is not None:
        storage.close()
    return {"served": served, "expired": len(expired), "status": status}


def main() -> None:
    result = run(url=sys.argv[1] if len(sys.argv) > 1 else None)
    served = result["served"]
    counts = Counter(served[: len(served) // 2])
    print("first half of the service, per tenant:", dict(counts))
    print("expired 'reports' jobs (never run):", result["expired"])
    print("status:", result["status"])


if __name__ == "__main__":
    main()
