"""ranch-dramatiq throughput: plain ``.send()`` vs ``lru_send()`` on the same Redis and workers.

One run per mode on a throwaway ``redis-server`` (ranch_redis.testing):

1. the producer (this process, one thread) sends ``--calls`` no-op calls of
   key "bulk", then one call each for 10 quiet keys: producer calls/s;
2. then ``--processes`` x ``--threads`` ``dramatiq`` CLI workers start on the
   pre-filled queue and drain it: drain calls/s, from the first execution
   to the last (worker clocks, same host);
3. the quiet keys' wait: the execution number at which each quiet call ran
   (plain FIFO runs them after the whole flood).

Every call does one ``INCR`` on Redis (to count executions) in both modes.
Both modes use the same actor (an ``lru_actor``; plain mode calls its
``.send()``), the same broker, middleware and worker settings. Prints a
table and writes JSON.

    python benchmarks/dramatiq_bench.py [--quick] [--out benchmarks/results/dramatiq_bench.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import drain  # benchmarks/drain.py: on sys.path as the script's (or the workers' --path) folder

ENV_URL = "RANCH_BENCH_REDIS_URL"


def build(url: str, expected: int) -> Any:
    """The benchmark's broker and no-op actor (also what the worker processes import)."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from ranch_dramatiq import lru_actor

    client = redis.Redis.from_url(url)
    broker = RedisBroker(url=url)

    @lru_actor(broker=broker, actor_name="bench_noop", max_retries=0)
    def noop(key: str) -> None:
        drain.record(client, key, expected)

    return broker, noop


if ENV_URL in os.environ and __name__ != "__main__":
    import dramatiq

    broker, noop = build(os.environ[ENV_URL], int(os.environ["RANCH_BENCH_EXPECTED"]))
    dramatiq.set_broker(broker)


def run_mode(mode: str, url: str, calls: int, processes: int, threads: int) -> Dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(drain.QUIET_KEYS)
    broker, actor = build(url, expected)
    produce_s = drain.produce(actor.send if mode == "plain" else lambda key: actor.lru_send(key, key), calls)
    env = dict(os.environ, **{ENV_URL: url, "RANCH_BENCH_EXPECTED": str(expected)})
    command = [sys.executable, "-m", "dramatiq", "dramatiq_bench", "--path", str(Path(__file__).parent)]
    command += ["--processes", str(processes), "--threads", str(threads), "--skip-logging"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        drain.wait_for_drain(client, mode, lambda: proc.poll() is None)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    row = drain.collect(client, mode, expected, produce_s)
    broker.close()
    client.close()
    return row


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls instead of 20,000")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/dramatiq_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (3_000 if args.quick else 20_000)

    from ranch_redis.testing import RedisServer

    results: List[Dict[str, Any]] = []
    with RedisServer() as server:
        for mode in ("plain", "fair"):
            results.append(run_mode(mode, server.url, calls, args.processes, args.threads))
    return drain.report(
        "dramatiq_bench",
        "lru_send",
        f"{args.processes} worker processes x {args.threads} threads, one run each",
        results,
        args.out,
        quick=args.quick,
        bulk_calls=calls,
        processes=args.processes,
        threads=args.threads,
    )


if __name__ == "__main__":
    sys.exit(main())
