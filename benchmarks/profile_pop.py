"""Where an in-memory pop's time goes at 10 and at 100,000 keys.

``FairScheduler`` on ``InMemoryStorage``, every key backlogged, chunks of
2,000 pushes (to the keys in turn) then 2,000 pops under ``cProfile`` then
2,000 acks, 10 chunks; prints, per function, the calls and the microseconds
per pop at both sizes (the functions taking the most at 100,000 first).
The same number of calls per pop at both sizes means no step grows with the
keys; a step that takes longer at the same count is slower memory.

    python benchmarks/profile_pop.py [flat|grouped]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
from typing import Dict, List, Tuple, Union

from ranch_core import FairScheduler, InMemoryStorage

Key = Union[str, Tuple[str, str]]


def profile(
    keys: int, grouped: bool, steps: int = 2_000, repeats: int = 10
) -> Dict[str, Tuple[float, float]]:
    """``{function: (calls per pop, microseconds per pop)}`` over ``steps * repeats`` pops."""
    scheduler = FairScheduler(InMemoryStorage())
    groups = min(100, keys) if grouped else keys
    names: List[Key] = [(f"g{i % groups}", f"m{i}") if grouped else f"k{i}" for i in range(keys)]
    for name in names:
        scheduler.push_many(name, [1, 2])
    profiler = cProfile.Profile()
    turn = 0
    for _ in range(repeats):
        for _ in range(steps):
            scheduler.push(names[turn % keys], 3)
            turn += 1
        profiler.enable()
        tasks = [scheduler.pop() for _ in range(steps)]
        profiler.disable()
        for task in tasks:
            assert task is not None
            scheduler.ack(task.task_id)
    pops = steps * repeats
    rows: Dict[str, Tuple[float, float]] = {}
    for (path, _, name), (_, calls, own, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        rows[f"{path.rsplit('/', 1)[-1]}:{name}"] = (calls / pops, own / pops * 1e6)
    return rows


def main(argv: List[str]) -> int:
    grouped = bool(argv) and argv[0] == "grouped"
    small, big = profile(10, grouped), profile(100_000, grouped)
    print(
        f"{'function':45} {'calls/pop 10':>12} {'calls/pop 100k':>14} {'us/pop 10':>10} {'us/pop 100k':>11}"
    )
    for name in sorted(big, key=lambda n: -big[n][1])[:14]:
        calls_small, time_small = small.get(name, (0.0, 0.0))
        calls_big, time_big = big[name]
        print(f"{name[:45]:45} {calls_small:12.2f} {calls_big:14.2f} {time_small:10.3f} {time_big:11.3f}")
    total_small = sum(t for _, t in small.values())
    total_big = sum(t for _, t in big.values())
    print(f"{'total (under cProfile)':45} {'':12} {'':14} {total_small:10.3f} {total_big:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
