"""A thread pool fed by FairScheduler, with weights and expiry.

Three tenants have a backlog; eight threads drain it while a producer keeps
adding short-lived "reports" jobs. Tenant "vip" has weight 0.5 (twice
the service of weight 1.0 while both wait); "reports" jobs expire after 50 ms
if nobody got to them. Run: ``python examples/thread_pool.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Dict, List

from ranch_core import FairScheduler, ScheduledTask


def run(threads: int = 8, per_tenant: int = 300) -> Dict[str, object]:
    expired: List[ScheduledTask] = []
    scheduler = FairScheduler(on_expired=expired.append)
    scheduler.set_weight("vip", 0.5)
    served: List[str] = []
    lock = threading.Lock()
    producing = threading.Event()
    producing.set()

    for n in range(per_tenant):
        for tenant in ("vip", "free", "batch"):
            scheduler.push(tenant, n)

    def produce() -> None:
        for n in range(20):
            scheduler.push("reports", n, expiry=0.05)
            time.sleep(0.002)
        producing.clear()

    def work() -> None:
        while True:
            task = scheduler.pop()
            if task is None:
                if not producing.is_set() and len(scheduler) == 0:
                    return
                time.sleep(0.0005)
                continue
            time.sleep(0.0002)  # the job
            with lock:
                served.append(task.key)
            scheduler.ack(task.task_id)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    producer = threading.Thread(target=produce)
    producer.start()
    for thread in pool:
        thread.start()
    producer.join()
    for thread in pool:
        thread.join()
    return {"served": served, "expired": len(expired), "status": scheduler.status().to_dict()}


def main() -> None:
    result = run()
    served = result["served"]
    assert isinstance(served, list)
    counts = Counter(served[: len(served) // 2])
    print("first half of the service, per tenant:", dict(counts))
    print("expired 'reports' jobs (never run):", result["expired"])
    print("status:", result["status"])


if __name__ == "__main__":
    main()
