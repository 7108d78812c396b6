"""ranch-dramatiq throughput: plain ``.send()`` vs ``lru_send()`` and ``lru_send_many()``.

One run on a throwaway ``redis-server`` (ranch_redis.testing), every row on the
same server, broker, middleware and worker settings:

1. per mode, the producer (this process, one thread) sends ``--calls`` no-op
   calls of key "bulk", then one call each for 10 quiet keys: producer
   calls/s, broker messages left on the queue, Redis commands per call
   (``INFO commandstats`` delta, commands run inside scripts included);
2. then ``--processes`` x ``--threads`` ``dramatiq`` CLI workers start on the
   pre-filled queue and drain it: drain calls/s from the first execution to
   the last (worker clocks, same host), Redis commands per call on the
   consume side (the no-op's own bookkeeping included, the same in every mode);
3. the quiet keys' wait: the execution number at which each quiet call ran;
4. the run budget (``Ranch(wakeup_budget=)``) at 1, 4, 8 and 16 calls per
   wake-up, produced with ``lru_send_many``;
5. a flood of ``--flood`` ``lru_send`` calls with no worker running: broker
   messages outstanding afterwards (at most ``max_wakeups``);
6. the producers side by side: ``.send()``, ``lru_send`` and ``lru_send_many``
   in alternating chunks (``--chunk`` calls each, ``--calls`` per producer in
   all) on one Redis, so a change of load on a shared host hits all three
   alike: the median chunk's calls/s of each, and per call the Redis commands
   and the server's microseconds inside ``EVALSHA`` (``INFO commandstats``).
   The producer ratios checked against the targets are these medians; the
   rows of 1 (one run each, one after the other) are reported beside them.

Modes: ``plain`` (the actor's ``.send()``), ``lru_send``, ``lru_send_many``
(batches of 1,000). Every call does one ``INCR`` on Redis (to count
executions). Prints a table and writes JSON.

    python benchmarks/dramatiq_bench.py [--quick] [--out benchmarks/results/dramatiq_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import drain  # benchmarks/drain.py: on sys.path as the script's (or the workers' --path) folder

ENV_URL = "RANCH_BENCH_REDIS_URL"
ENV_BUDGET = "RANCH_BENCH_BUDGET"
QUEUE = "dramatiq:default"
BUDGETS = (1, 4, 8, 16)


def build(url: str, expected: int, budget: Optional[int] = None) -> Any:
    """The benchmark's broker and no-op actor (also what the worker processes import)."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from ranch_dramatiq import Ranch, lru_actor

    client = redis.Redis.from_url(url)
    broker = RedisBroker(url=url)
    broker.add_middleware(Ranch() if budget is None else Ranch(wakeup_budget=budget))

    @lru_actor(broker=broker, actor_name="bench_noop", max_retries=0)
    def noop(key: str) -> None:
        drain.record(client, key, expected)

    return broker, noop


if ENV_URL in os.environ and __name__ != "__main__":
    import dramatiq

    _budget = os.environ.get(ENV_BUDGET)
    broker, noop = build(
        os.environ[ENV_URL], int(os.environ["RANCH_BENCH_EXPECTED"]), int(_budget) if _budget else None
    )
    dramatiq.set_broker(broker)


def command_stats(client: Any) -> Dict[str, int]:
    """Commands Redis has run by name (``INFO commandstats``), the benchmark's own INFO left out."""
    stats = client.info("commandstats")
    return {name[8:]: int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info"}


def delta(after: Dict[str, int], before: Dict[str, int], calls: int) -> Dict[str, float]:
    """Commands per call between two :func:`command_stats`, largest first."""
    per_call = {name: (n - before.get(name, 0)) / calls for name, n in after.items()}
    return dict(sorted(((k, v) for k, v in per_call.items() if v), key=lambda item: -item[1]))


def produce_many(actor: Any, calls: int) -> float:
    """``drain.produce`` with ``lru_send_many`` in batches of 1,000."""
    start = time.perf_counter()
    batch = [(("bulk",), None)] * 1000
    for done in range(0, calls, 1000):
        actor.lru_send_many("bulk", batch[: min(1000, calls - done)])
    for key in drain.QUIET_KEYS:
        actor.lru_send_many(key, [((key,), None)])
    return time.perf_counter() - start


def run_mode(
    mode: str, url: str, calls: int, processes: int, threads: int, budget: Optional[int] = None
) -> Dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(drain.QUIET_KEYS)
    broker, actor = build(url, expected, budget)
    actor.lru_send("warm-up", "warm-up")  # loads the scripts; removed below
    client.flushall()
    before = command_stats(client)
    if mode == "plain":
        produce_s = drain.produce(actor.send, calls)
    elif mode == "lru_send":
        produce_s = drain.produce(lambda key: actor.lru_send(key, key), calls)
    else:
        produce_s = produce_many(actor, calls)
    produce_commands = delta(command_stats(client), before, expected)
    queued = int(client.llen(QUEUE))
    env = dict(os.environ, **{ENV_URL: url, "RANCH_BENCH_EXPECTED": str(expected)})
    if budget is not None:
        env[ENV_BUDGET] = str(budget)
    command = [sys.executable, "-m", "dramatiq", "dramatiq_bench", "--path", str(Path(__file__).parent)]
    command += ["--processes", str(processes), "--threads", str(threads), "--skip-logging"]
    before = command_stats(client)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        drain.wait_for_drain(client, mode, lambda: proc.poll() is None)
        consume_commands = delta(command_stats(client), before, expected)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    row = drain.collect(client, mode, expected, produce_s)
    row.update(
        budget=budget,
        broker_messages_after_produce=queued,
        produce_commands_per_call=sum(produce_commands.values()),
        consume_commands_per_call=sum(consume_commands.values()),
        produce_commands=produce_commands,
        consume_commands=consume_commands,
    )
    broker.close()
    client.close()
    return row


def flood(url: str, calls: int) -> Dict[str, Any]:
    """``calls`` ``lru_send`` with no worker running: broker messages outstanding afterwards."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    broker, actor = build(url, calls)
    start = time.perf_counter()
    for _ in range(calls):
        actor.lru_send("flood", "flood")
    seconds = time.perf_counter() - start
    row = {
        "calls": calls,
        "producer_calls_per_s": calls / seconds,
        "broker_messages": int(client.llen(QUEUE)),
        "max_wakeups": actor._ranch_backlog.max_wakeups,
        "backlog_size": actor.get_system_status()["backlog_size"],
    }
    broker.close()
    client.close()
    return row


def side_by_side(url: str, calls: int, chunk: int) -> Dict[str, Any]:
    """Step 6 of the module docstring: the three producers in alternating chunks."""
    import statistics

    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    broker, actor = build(url, calls)
    actor.lru_send("warm-up", "warm-up")
    actor.send("warm-up")
    client.flushall()
    batch = [(("bulk",), None)] * chunk

    def plain(n: int) -> None:
        for _ in range(n):
            actor.send("bulk")

    def lru_send(n: int) -> None:
        for _ in range(n):
            actor.lru_send("bulk", "bulk")

    def lru_send_many(n: int) -> None:
        actor.lru_send_many("bulk", batch[:n])

    producers = {"plain": plain, "lru_send": lru_send, "lru_send_many": lru_send_many}
    rates: Dict[str, List[float]] = {name: [] for name in producers}
    commands: Dict[str, Dict[str, int]] = {name: {} for name in producers}
    server_usec = dict.fromkeys(producers, 0.0)
    done = 0
    while done < calls:
        n = min(chunk, calls - done)
        for name, produce in producers.items():
            before = client.info("commandstats")
            start = time.perf_counter()
            produce(n)
            rates[name].append(n / (time.perf_counter() - start))
            after = client.info("commandstats")
            for stat, value in after.items():
                if stat == "cmdstat_info":
                    continue
                spent = int(value["calls"]) - int(before.get(stat, {}).get("calls", 0))
                if spent:
                    commands[name][stat[8:]] = commands[name].get(stat[8:], 0) + spent
                if stat == "cmdstat_evalsha":
                    server_usec[name] += float(value["usec"]) - float(before.get(stat, {}).get("usec", 0))
        done += n
    broker.close()
    client.close()
    out: Dict[str, Any] = {"calls": calls, "chunk": chunk, "chunks": len(rates["plain"])}
    for name in producers:
        per_call = {cmd: n / calls for cmd, n in sorted(commands[name].items(), key=lambda item: -item[1])}
        out[name] = {
            "median_calls_per_s": statistics.median(rates[name]),
            "best_calls_per_s": max(rates[name]),
            "commands_per_call": sum(per_call.values()),
            "commands": per_call,
            "server_usec_per_call": server_usec[name] / calls,
        }
    return out


def report(
    rows: List[Dict[str, Any]],
    budgets: List[Dict[str, Any]],
    flooded: Dict[str, Any],
    paired: Optional[Dict[str, Any]] = None,
) -> str:
    """The Markdown table of one run and the ratios against plain."""
    plain = rows[0]
    lines = [
        "| mode | produce calls/s | vs plain | drain calls/s | vs plain | broker msgs after produce "
        "| Redis cmds/call produce | consume | quiet worst exec |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows + budgets:
        label = row["mode"] if row["budget"] is None else f"{row['mode']}, budget {row['budget']}"
        lines.append(
            f"| {label} | {row['producer_calls_per_s']:,.0f} "
            f"| {row['producer_calls_per_s'] / plain['producer_calls_per_s']:.2f}x "
            f"| {row['drain_calls_per_s']:,.0f} "
            f"| {row['drain_calls_per_s'] / plain['drain_calls_per_s']:.2f}x "
            f"| {row['broker_messages_after_produce']:,} | {row['produce_commands_per_call']:.2f} "
            f"| {row['consume_commands_per_call']:.2f} | {row['quiet_worst_execution']:,} |"
        )
    lines.append("")
    lines.append(
        f"Flood: {flooded['calls']:,} `lru_send` with no worker running "
        f"({flooded['producer_calls_per_s']:,.0f} calls/s): "
        f"{flooded['broker_messages']} broker messages outstanding "
        f"(max_wakeups {flooded['max_wakeups']}), {flooded['backlog_size']:,} calls stored."
    )
    if paired is not None:
        base = paired["plain"]["median_calls_per_s"]
        lines += [
            "",
            f"Producers side by side ({paired['calls']:,} calls each, alternating chunks of "
            f"{paired['chunk']:,}, median chunk):",
            "",
            "| producer | calls/s | vs plain | Redis cmds/call | server µs/call in EVALSHA |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in ("plain", "lru_send", "lru_send_many"):
            side = paired[name]
            lines.append(
                f"| {name} | {side['median_calls_per_s']:,.0f} | {side['median_calls_per_s'] / base:.2f}x "
                f"| {side['commands_per_call']:.2f} | {side['server_usec_per_call']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls instead of 20,000, flood 10,000")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--flood", type=int, help="lru_send calls with no worker (default 100,000)")
    parser.add_argument("--chunk", type=int, default=1000, help="calls per chunk in step 6")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/dramatiq_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (3_000 if args.quick else 20_000)
    flood_calls = args.flood or (10_000 if args.quick else 100_000)

    from ranch_redis.testing import RedisServer

    run: Callable[..., Dict[str, Any]]
    with RedisServer() as server:

        def run(mode: str, budget: Optional[int] = None) -> Dict[str, Any]:
            row = run_mode(mode, server.url, calls, args.processes, args.threads, budget)
            print(
                f"  {mode} budget={budget}: produce {row['producer_calls_per_s']:,.0f}/s, "
                f"drain {row['drain_calls_per_s']:,.0f}/s",
                flush=True,
            )
            return row

        rows = [run("plain"), run("lru_send"), run("lru_send_many")]
        budgets = [run("lru_send_many", budget) for budget in BUDGETS]
        flooded = flood(server.url, flood_calls)
        paired = side_by_side(server.url, calls, args.chunk)
    setup = (
        f"{calls:,} bulk + {len(drain.QUIET_KEYS)} quiet no-op calls per row, {args.processes} worker "
        f"processes x {args.threads} threads, one run, Python {platform.python_version()}"
    )
    table = report(rows, budgets, flooded, paired)
    print(setup)
    print(table)
    plain = rows[0]
    paired_plain = paired["plain"]["median_calls_per_s"]
    ratios = {
        "lru_send_producer": paired["lru_send"]["median_calls_per_s"] / paired_plain,
        "lru_send_many_producer": paired["lru_send_many"]["median_calls_per_s"] / paired_plain,
        "lru_send_drain": rows[1]["drain_calls_per_s"] / plain["drain_calls_per_s"],
    }
    row_ratios = {
        "lru_send_producer": rows[1]["producer_calls_per_s"] / plain["producer_calls_per_s"],
        "lru_send_many_producer": rows[2]["producer_calls_per_s"] / plain["producer_calls_per_s"],
    }
    targets = {"lru_send_producer": 1.0, "lru_send_many_producer": 3.0, "lru_send_drain": 0.95}
    for name, ratio in ratios.items():
        verdict = "met" if ratio >= targets[name] else "MISSED"
        rows_note = f" (rows, one run each: {row_ratios[name]:.2f}x)" if name in row_ratios else ""
        print(f"{name}: {ratio:.2f}x (target >= {targets[name]}x) {verdict}{rows_note}")
    print(
        f"flood: {flooded['broker_messages']} broker messages <= max_wakeups {flooded['max_wakeups']}: "
        f"{'met' if flooded['broker_messages'] <= flooded['max_wakeups'] else 'MISSED'}"
    )
    data = {
        "benchmark": "dramatiq_bench",
        "setup": setup,
        "quick": args.quick,
        "bulk_calls": calls,
        "processes": args.processes,
        "threads": args.threads,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": rows,
        "budgets": budgets,
        "flood": flooded,
        "side_by_side": paired,
        "ratios": ratios,
        "row_ratios": row_ratios,
        "targets": targets,
        "table": table,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
