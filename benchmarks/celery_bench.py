"""ranch-celery throughput: plain ``.delay()`` vs ``lru_delay()`` and ``lru_delay_many()``.

Same Redis, same workers, one run.

One run on a throwaway ``redis-server`` (ranch_redis.testing), each mode on a flushed Redis:

1. producer: this process (one thread) sends ``--calls`` no-op calls of key
   "bulk", then one call each for 10 quiet keys, with no worker running:
   calls/s; for ``lru_delay`` also the broker messages outstanding
   afterwards (``LLEN`` of the queue: at most ``max_wakeups``);
2. drain: ``--workers`` ``celery worker`` processes (``-P prefork -c
   --concurrency``) start on the pre-filled queue and drain it: calls/s from
   the first execution to the last (worker clocks, same host), and the
   quiet keys' wait (execution number at which each ran);
3. ``lru_delay_many``: the same calls in batches of 1,000, producer calls/s
   (drained by the same workers);
4. Redis commands per call on the produce and the consume side, from
   ``INFO commandstats`` deltas (the benchmark's own ``INFO``/``GET``
   polling excluded; the no-op's ``INCR`` and the drain bookkeeping are the
   same in every mode);
5. ``--budgets 1,4,8,16``: the ``lru_delay`` drain again with each
   ``ranch_wakeup_budget`` (``--budget-calls`` calls each).

Every call does one ``INCR`` on Redis (to count executions) in every mode.
All modes use the same task (an ``lru_task``; plain mode calls its
``.delay()``), the same broker, result settings (ignored) and worker
settings (``acks_late``, prefetch multiplier 1, as the README recommends).
Prints a table and writes JSON.

    python benchmarks/celery_bench.py [--quick] [--out benchmarks/results/celery_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, cast

import drain  # benchmarks/drain.py: on sys.path as the script's (or the workers' --path) folder

ENV_URL = "RANCH_BENCH_REDIS_URL"
ENV_EXPECTED = "RANCH_BENCH_EXPECTED"
ENV_BUDGET = "RANCH_BENCH_BUDGET"
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
    if os.environ.get(ENV_BUDGET):
        app.conf.ranch_wakeup_budget = int(os.environ[ENV_BUDGET])

    def noop(key: str) -> None:
        drain.record(client, key, expected)

    task = lru_task(app, name="bench.noop", shared=False)(noop)

    def ready(sender: Any = None, **_kwargs: Any) -> None:
        client.rpush(READY, getattr(sender, "hostname", "?"))

    worker_ready.connect(ready, weak=False)
    return app, task


if ENV_URL in os.environ and __name__ != "__main__":
    app, noop = build(os.environ[ENV_URL], int(os.environ[ENV_EXPECTED]))


#: Commands the benchmark itself sends while it watches (not part of any mode's cost).
OWN_COMMANDS = {"info", "flushall", "get", "llen", "config|resetstat", "config", "hgetall", "client|setname"}


def command_counts(client: Any) -> Dict[str, int]:
    """``INFO commandstats`` as ``{command: calls}``."""
    stats = client.info("commandstats")
    return {name.replace("cmdstat_", ""): int(value["calls"]) for name, value in stats.items()}


def delta(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    """Commands sent between two :func:`command_counts`, without the benchmark's own."""
    return {
        name: after[name] - before.get(name, 0)
        for name in after
        if name not in OWN_COMMANDS and after[name] - before.get(name, 0) > 0
    }


def scripts(commands: Dict[str, int]) -> int:
    """Script invocations among ``commands`` (``INFO commandstats`` also counts each command a
    script runs, so a Lua step is one round trip but several commands)."""
    return sum(n for name, n in commands.items() if name in ("evalsha", "eval", "fcall", "evalsha_ro"))


def start_workers(
    url: str, expected: int, workers: int, concurrency: int, budget: Optional[int]
) -> List[Any]:
    env = dict(os.environ, **{ENV_URL: url, ENV_EXPECTED: str(expected)})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
    if budget is not None:
        env[ENV_BUDGET] = str(budget)
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
    return procs


def stop_workers(procs: List[Any]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sender(mode: str, task: Any) -> Callable[[str], Any]:
    """What sends one call of ``key`` in ``mode`` (``many`` buffers calls into batches of 1,000)."""
    if mode == "plain":
        return cast(Callable[[str], Any], task.delay)
    if mode == "fair":
        return lambda key: task.lru_delay(key, key)
    raise AssertionError(mode)


def produce_many(task: Any, calls: int) -> float:
    """:func:`drain.produce` for ``lru_delay_many``: bulk in batches of 1,000, then the quiet keys."""
    start = time.perf_counter()
    for first in range(0, calls, 1_000):
        task.lru_delay_many("bulk", [(("bulk",), None)] * min(1_000, calls - first))
    for key in drain.QUIET_KEYS:
        task.lru_delay_many(key, [((key,), None)])
    return time.perf_counter() - start


def run_mode(
    mode: str, url: str, calls: int, workers: int, concurrency: int, budget: Optional[int] = None
) -> Dict[str, Any]:
    """Produce ``calls`` (+ quiet) calls in ``mode`` with no worker, then drain them; one result row."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(drain.QUIET_KEYS)
    _app, task = build(url, expected)
    queue = task.lru_backlog
    before = command_counts(client)
    produce_s = produce_many(task, calls) if mode == "many" else drain.produce(sender(mode, task), calls)
    produced = command_counts(client)
    outstanding = int(client.llen(queue))
    procs = start_workers(url, expected, workers, concurrency, budget)
    try:
        drain.wait_for_drain(client, mode, lambda: all(p.poll() is None for p in procs))
        consumed = command_counts(client)
    finally:
        stop_workers(procs)
    row = drain.collect(client, mode, expected, produce_s)
    produce_cmds, consume_cmds = delta(before, produced), delta(produced, consumed)
    row.update(
        budget=budget,
        broker_messages_after_produce=outstanding,
        redis_commands_per_call_produce=sum(produce_cmds.values()) / expected,
        redis_commands_per_call_consume=sum(consume_cmds.values()) / expected,
        redis_scripts_per_call_produce=scripts(produce_cmds) / expected,
        redis_scripts_per_call_consume=scripts(consume_cmds) / expected,
        redis_commands_produce=produce_cmds,
        redis_commands_consume=consume_cmds,
    )
    client.close()
    return row


LABELS = {"plain": ".delay", "fair": "lru_delay", "many": "lru_delay_many"}


def report(results: List[Dict[str, Any]], budgets: List[Dict[str, Any]], out: str, **extra: Any) -> int:
    """Print the table and the ratios to plain; write the JSON to ``out``."""
    plain = results[0]
    print(
        f"celery_bench: {plain['calls'] - len(drain.QUIET_KEYS)} bulk + {len(drain.QUIET_KEYS)} quiet "
        "no-op calls, "
        f"{extra['workers']} worker processes x prefork {extra['concurrency']}, one run each"
    )
    print(
        f"{'mode':<15} {'produce/s':>10} {'drain/s':>9} {'quiet worst/median':>19} "
        f"{'msgs after produce':>19} {'cmds/call produce':>18} {'cmds/call consume':>18}"
    )
    for row in results + budgets:
        label = LABELS[row["mode"]] + (f" B={row['budget']}" if row in budgets else "")
        print(
            f"{label:<15} {row['producer_calls_per_s']:>10.0f} {row['drain_calls_per_s']:>9.0f} "
            f"{row['quiet_worst_execution']:>10} / {row['quiet_median_execution']:<6} "
            f"{row['broker_messages_after_produce']:>19} {row['redis_commands_per_call_produce']:>18.2f} "
            f"{row['redis_commands_per_call_consume']:>18.2f}"
        )
    ratios = {
        f"{row['mode']}_{what}": row[f"{what}_calls_per_s"] / plain[f"{what}_calls_per_s"]
        for row in results[1:]
        for what in ("producer", "drain")
    }
    print(
        f"lru_delay/.delay: producer {ratios['fair_producer']:.2f}x (target >= 1.2x), "
        f"drain {ratios['fair_drain']:.2f}x (target >= 0.85x); "
        f"lru_delay_many/.delay per call: producer {ratios['many_producer']:.2f}x (target >= 5x)"
    )
    data = {
        "benchmark": "celery_bench",
        **extra,
        "quiet_keys": len(drain.QUIET_KEYS),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": results,
        "budget_runs": budgets,
        "ratios": ratios,
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 calls instead of 100,000, no budget runs")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--budgets", default="1,4,8,16", help="run budgets to drain with (empty: none)")
    parser.add_argument("--budget-calls", type=int, default=20_000, help="bulk calls per budget run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="prefork children per worker (default: the CPU count, as celery worker's own default)",
    )
    parser.add_argument("--out", default="benchmarks/results/celery_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (5_000 if args.quick else 100_000)
    budget_list = [] if args.quick or not args.budgets else [int(b) for b in args.budgets.split(",")]

    from ranch_redis.testing import RedisServer

    results: List[Dict[str, Any]] = []
    budgets: List[Dict[str, Any]] = []
    with RedisServer() as server:
        for mode in ("plain", "fair", "many"):
            results.append(run_mode(mode, server.url, calls, args.workers, args.concurrency))
        for budget in budget_list:
            budgets.append(
                run_mode("fair", server.url, args.budget_calls, args.workers, args.concurrency, budget)
            )
    return report(
        results,
        budgets,
        args.out,
        quick=args.quick,
        bulk_calls=calls,
        budget_calls=args.budget_calls,
        workers=args.workers,
        concurrency=args.concurrency,
        pool="prefork",
        cpus=os.cpu_count(),
    )


if __name__ == "__main__":
    sys.exit(main())
