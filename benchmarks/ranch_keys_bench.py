"""What ``ranch keys --limit 20`` costs as a backlog grows to 100,000 keys, and what the
listing indexes cost each push, pop and ack.

1. Page cost: a backlog of K keys (K = 100 ... 100,000; key i holds 1 + i % 7
   waiting calls, a tenth of them, at least 20, were served once). For each order
   (``waiting``, ``wait``, ``served``) one page of 20 keys is read with
   ``RedisStorage.keys_page`` (what ``ranch keys`` runs) many times; the
   figures are the Redis commands the page script runs (``INFO
   commandstats``: exact, machine-independent), the server time per page
   and the round trip per page. Flat in K means the page reads only what it
   shows.
2. Step cost: server time of ``push``, ``pop``, ``ack`` and ``finish`` scripts over 100
   keys (``INFO commandstats``, ``usec_per_call`` of ``evalsha``, each phase
   measured alone). Run it on the commit before the indexes (``--label``) to
   compare.

Starts its own ``redis-server`` on a free loopback port. Prints tables and
writes JSON.

    python benchmarks/ranch_keys_bench.py [--quick] [--out benchmarks/results/ranch_keys_bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import redis
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer


def fill(storage: RedisStorage, keys: int, batch: int = 2000) -> None:
    """Key i gets 1 + i % 7 calls, pushed with the push script, pipelined."""
    script = storage._scripts["push"]
    pipe = storage.client.pipeline(transaction=False)
    queued = 0
    for i in range(keys):
        for j in range(1 + i % 7):
            task = ScheduledTask(f"t{i}-{j}", f"key{i:06d}", j, 1.0)
            script(keys=[storage._stats], args=[*storage._push_args(task, None), "0"], client=pipe)
            queued += 1
            if queued % batch == 0:
                pipe.execute()
    pipe.execute()


def commands(client: redis.Redis) -> Dict[str, Dict[str, float]]:
    return {k: dict(v) for k, v in client.info("commandstats").items()}


def page_cost(url: str, keys: int, pages: int) -> List[Dict[str, Any]]:
    client = redis.Redis.from_url(url)
    client.flushall()
    storage = RedisStorage(client, namespace=f"bench{keys}")
    fill(storage, keys)
    served = max(keys // 10, 20)
    for _ in range(served):
        task = storage.pop(2.0, 60.0)
        assert task.task is not None
        storage.ack(task.task.task_id)
    rows = []
    for order in ("waiting", "wait", "served"):
        page = storage.keys_page(order, 20)
        assert len(page.rows) == 20
        client.config_resetstat()
        start = time.perf_counter()
        for _ in range(pages):
            storage.keys_page(order, 20)
        elapsed = time.perf_counter() - start
        stats = commands(client)
        evalsha = stats.pop("cmdstat_evalsha")
        inner = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_config", "cmdstat_info"))
        rows.append(
            {
                "keys": keys,
                "order": order,
                "commands_per_page": inner / pages,
                "server_us_per_page": evalsha["usec_per_call"],
                "round_trip_us_per_page": elapsed / pages * 1e6,
            }
        )
    client.close()
    return rows


def step_cost(url: str, calls: int) -> Dict[str, float]:
    client = redis.Redis.from_url(url)
    client.flushall()
    storage = RedisStorage(client, namespace="steps")
    out: Dict[str, float] = {}
    tasks = [ScheduledTask(f"s{i}", f"k{i % 100}", i, 1.0) for i in range(calls)]
    client.config_resetstat()
    for task in tasks:
        storage.push(task)
    out["push_server_us"] = commands(client)["cmdstat_evalsha"]["usec_per_call"]
    leased = []
    client.config_resetstat()
    for _ in range(calls):
        popped = storage.pop(2.0, 60.0).task
        assert popped is not None
        leased.append(popped.task_id)
    out["pop_server_us"] = commands(client)["cmdstat_evalsha"]["usec_per_call"]
    client.config_resetstat()
    for task_id in leased:
        storage.ack(task_id)
    out["ack_server_us"] = commands(client)["cmdstat_evalsha"]["usec_per_call"]
    # finish (what the adapters end a call with: the ack with a time, which
    # also counts the run time) on as many calls popped again
    for i in range(calls):
        storage.push(ScheduledTask(f"f{i}", f"k{i % 100}", i, 2.0))
    again = []
    for _ in range(calls):
        popped = storage.pop(3.0, 60.0).task
        assert popped is not None
        again.append(popped.task_id)
    client.config_resetstat()
    for task_id in again:
        storage.finish(task_id, 4.0)
    out["finish_server_us"] = commands(client)["cmdstat_evalsha"]["usec_per_call"]
    client.close()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 10,000 keys (a few seconds)")
    parser.add_argument(
        "--steps-only", action="store_true", help="only the step cost (runs on older commits)"
    )
    parser.add_argument("--label", default="this commit", help="name of the code measured (JSON)")
    parser.add_argument("--out", default="benchmarks/results/ranch_keys_bench.json")
    args = parser.parse_args(argv)
    sizes = [100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]
    pages = 200 if args.quick else 500
    with RedisServer() as server:
        version = redis.Redis.from_url(server.url).info("server")["redis_version"]
        steps = [step_cost(server.url, 5_000 if args.quick else 20_000) for _ in range(3)]
        best = {name: min(run[name] for run in steps) for name in steps[0]}
        rows = (
            [] if args.steps_only else [row for keys in sizes for row in page_cost(server.url, keys, pages)]
        )

    print(f"redis-server {version}, Python {platform.python_version()}, one connection ({args.label})")
    print()
    if rows:
        print(f"{'keys':>9}  {'order':<8}{'commands/page':>15}{'server us':>11}{'round trip us':>15}")
    for row in rows:
        print(
            f"{row['keys']:>9,}  {row['order']:<8}{row['commands_per_page']:>15.1f}"
            f"{row['server_us_per_page']:>11.1f}{row['round_trip_us_per_page']:>15.1f}"
        )
    if rows:
        print()
    print("server time per script call, 100 keys (best of 3 runs):")
    for name, value in best.items():
        print(f"  {name:<16}{value:>7.2f} us")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"python": sys.version, "redis": version, "label": args.label, "pages": rows, "steps": best},
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
