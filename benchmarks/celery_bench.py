"""ranch-celery throughput: plain ``.delay()`` vs ``lru_delay()`` on the same Redis and workers.

One run per mode on a throwaway ``redis-server`` (ranch_redis.testing):

1. the producer (this process, one thread) sends ``--calls`` no-op calls of
   key "bulk", then one call each for 10 quiet keys: producer calls/s;
2. then ``--workers`` ``celery worker`` processes (``-P prefork -c
   --concurrency``) start on the pre-filled queue and drain it: drain
   calls/s, from the first execution to the last (worker clocks, same host);
3. the quiet keys' wait: the execution number at which each quiet call ran
   (plain FIFO runs them after the whole flood).

Every call does one ``INCR`` on Redis (to count executions) in both modes.
Both modes use the same task (an ``lru_task``; plain mode calls its
``.delay()``), the same broker, result settings (ignored) and worker
settings (``acks_late``, prefetch multiplier 1, as the README recommends).
Prints a table and writes JSON.

    python benchmarks/celery_bench.py [--quick] [--out benchmarks/results/celery_bench.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import drain  # benchmarks/drain.py: on sys.path as the script's (or the workers' --path) folder

ENV_URL = "RANCH_BENCH_REDIS_URL"
ENV_EXPECTED = "RANCH_BENCH_EXPECTED"
READY = "bench:ready"


def build(url: str, expected: int) -> Any:
    """The benchmark's Celery app and no-op task (also what the worker processes import)."""
    import redis
    from celery import Celery
    from celery.signals import worker_ready
    from ranch_celery import lru_task

    client = redis.Redis.from_url(url)
    app = Celery("celery_bench", broker=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    def noop(key: str) -> None:
        drain.record(client, key, expected)

    task = lru_task(app, name="bench.noop", shared=False)(noop)

    def ready(sender: Any = None, **_kwargs: Any) -> None:
        client.rpush(READY, getattr(sender, "hostname", "?"))

    worker_ready.connect(ready, weak=False)
    return app, task


if ENV_URL in os.environ and __name__ != "__main__":
    app, noop = build(os.environ[ENV_URL], int(os.environ[ENV_EXPECTED]))


def run_mode(mode: str, url: str, calls: int, workers: int, concurrency: int) -> Dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(drain.QUIET_KEYS)
    _app, task = build(url, expected)
    produce_s = drain.produce(task.delay if mode == "plain" else lambda key: task.lru_delay(key, key), calls)
    env = dict(os.environ, **{ENV_URL: url, ENV_EXPECTED: str(expected)})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
    procs = []
    for number in range(workers):
        command = [
            sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "-P", "prefork",
            "-c", str(concurrency), "-n", f"bench{number}@%h", "--prefetch-multiplier", "1",
            "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        )
    try:
        drain.wait_for_drain(client, mode, lambda: all(p.poll() is None for p in procs))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    row = drain.collect(client, mode, expected, produce_s)
    client.close()
    return row


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls instead of 20,000")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="prefork children per worker (default: the CPU count, as celery worker's own default)",
    )
    parser.add_argument("--out", default="benchmarks/results/celery_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (3_000 if args.quick else 20_000)

    from ranch_redis.testing import RedisServer

    results: List[Dict[str, Any]] = []
    with RedisServer() as server:
        for mode in ("plain", "fair"):
            results.append(run_mode(mode, server.url, calls, args.workers, args.concurrency))
    return drain.report(
        "celery_bench",
        "lru_delay",
        f"{args.workers} worker processes x prefork {args.concurrency}, one run each",
        results,
        args.out,
        quick=args.quick,
        bulk_calls=calls,
        workers=args.workers,
        concurrency=args.concurrency,
        pool="prefork",
        cpus=os.cpu_count(),
    )


if __name__ == "__main__":
    sys.exit(main())
