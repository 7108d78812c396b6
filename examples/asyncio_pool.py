"""An asyncio worker pool fed by FairScheduler.

A "bulk" tenant floods 2,000 jobs, then three interactive tenants send a few
each. Four async workers pull from the scheduler whenever they are free, so
each interactive job waits for about one job per active tenant, not for the
flood. Run: ``python examples/asyncio_pool.py``.
"""

from __future__ import annotations

import asyncio
from typing import Dict, List

from ranch_core import FairScheduler


async def handle(payload: Dict[str, int]) -> None:
    await asyncio.sleep(0)  # a real job would await I/O here


async def worker(scheduler: FairScheduler, wake: asyncio.Event, order: List[str]) -> None:
    while True:
        task = scheduler.pop()
        if task is None:
            if len(scheduler) == 0 and wake.is_set():
                return
            await asyncio.sleep(0.001)
            continue
        try:
            await handle(task.payload)
            order.append(task.key)
        finally:
            scheduler.ack(task.task_id)


async def run(workers: int = 4, flood: int = 2000) -> List[str]:
    """Returns the keys in the order their jobs finished."""
    scheduler = FairScheduler()
    order: List[str] = []
    for n in range(flood):
        scheduler.push("bulk", {"n": n})
    for tenant in ("alice", "bob", "carol"):
        for n in range(3):
            scheduler.push(tenant, {"n": n})
    done_producing = asyncio.Event()
    done_producing.set()
    await asyncio.gather(*(worker(scheduler, done_producing, order) for _ in range(workers)))
    return order


def main() -> None:
    order = asyncio.run(run())
    for tenant in ("alice", "bob", "carol"):
        last = max(i for i, key in enumerate(order) if key == tenant)
        print(f"{tenant:>6}: all 3 jobs done by position {last + 1} of {len(order)}")
    print(f"  bulk: {order.count('bulk')} jobs, served in the gaps")


if __name__ == "__main__":
    main()
