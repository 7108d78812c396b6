"""Two-level keys: a group's share against a group of 60 members, and what selection costs.

The measures of issue 12 for ``(group, member)`` keys:

(a) share: group A with one member and group B with ``--members`` (60), every
    member backlogged, one worker slot; each group's share of the first 100
    executions (target: 50 % +- 4 with pairs). Three runners: ``FairScheduler``
    on the in-memory storage (pop and ack in a loop); Celery, a real worker
    (``ranch_celery.inprocess.in_process_worker``, solo pool, ``memory://``
    broker, in-memory storage); Dramatiq, a real ``dramatiq.Worker`` (one
    thread, ``StubBroker``, in-memory storage). Each with pairs
    (``("B", "u7")``) and, for contrast, flat string keys (``"B:u7"``: A is
    one key of 61). ``--redis`` runs Celery and Dramatiq on a throwaway
    ``redis-server`` (``ranch_redis.testing.RedisServer``) as well; while
    ``RedisStorage`` refuses pairs, those rows say so.
(b) selection cost: 10, 100, 1,000, 10,000 and 100,000 backlogged keys, flat
    (``"k17"``) and grouped (``min(100, K)`` groups of ``K / groups``
    members); each timed step is ``push`` (to the next key in turn), ``pop``
    and ``ack`` through ``FairScheduler`` on ``InMemoryStorage`` (and on
    ``RedisStorage`` with ``--redis``, pairs once it takes them), in short
    chunks: ``steps`` pushes, then ``steps`` pops, then ``steps`` acks, each
    loop timed on its own; in memory in CPU time of the thread
    (``time.thread_time``: on a shared VM, time spent descheduled does not
    count), on Redis by the wall clock (the server's time counts) and by
    the time the server spent inside commands (``INFO commandstats``: the
    scripts' own cost, without round trips: by default, ``--server-time
    scripts``, the ``EVALSHA`` calls alone, whose time includes the commands
    they run; ``all`` adds those commands' own entries too, so a script's
    commands count twice, as runs before 2026-11-30 13:20 did). Reports the microseconds per
    ``pop`` and per push+pop+ack of the fastest chunk, and each against 10
    keys (target: at most 1.5x at 100,000 keys).

Prints both tables and writes JSON.

    python benchmarks/fairness_groups.py [--quick] [--redis] [--members 60] [--only share|cost]
                                         [--server-time all|scripts] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ranch_core import FairScheduler, InMemoryStorage

Key = Union[str, Tuple[str, str]]

#: The issue's window: each group's share of the first this many executions.
FIRST = 100
#: Calls each member has waiting before the worker starts: enough that every
#: member stays backlogged through the first FIRST executions, whoever wins.
CALLS_OF_A = FIRST + 20
CALLS_PER_B_MEMBER = 4
#: How long a real worker may take to run the first FIRST calls.
WORKER_TIMEOUT = 60.0
#: The key counts of the selection-cost table.
KEY_COUNTS = (10, 100, 1_000, 10_000, 100_000)
#: At most this many groups in the grouped shape.
GROUPS = 100
SHAPES = ("flat", "grouped")


# --- (a) each group's share of the first executions -------------------------------------------


def backlog(shape: str, members: int) -> List[Tuple[Key, int]]:
    """Every member's key and its number of waiting calls: A's one member, then B's."""
    users = [("A", "u0", CALLS_OF_A)] + [("B", f"u{n}", CALLS_PER_B_MEMBER) for n in range(members)]
    return [
        ((group, member) if shape == "pairs" else f"{group}:{member}", calls)
        for group, member, calls in users
    ]


def group_of(key: Any) -> str:
    """``"A"`` for ``("A", "u0")``, ``["A", "u0"]`` and ``"A:u0"``."""
    return str(key).partition(":")[0] if isinstance(key, str) else str(key[0])


def share_row(runner: str, storage: str, shape: str, order: Sequence[Any]) -> Dict[str, Any]:
    first = [group_of(key) for key in order[:FIRST]]
    return {
        "runner": runner,
        "storage": storage,
        "keys": shape,
        "executions": len(first),
        "share": {group: first.count(group) / len(first) for group in ("A", "B")} if first else None,
    }


def refused_row(runner: str, storage: str, shape: str, exc: Exception) -> Dict[str, Any]:
    return {"runner": runner, "storage": storage, "keys": shape, "refused": f"{type(exc).__name__}: {exc}"}


def core_order(shape: str, members: int) -> List[Any]:
    """FairScheduler on the in-memory storage: one slot is pop, run, ack."""
    scheduler = FairScheduler(InMemoryStorage())
    for key, calls in backlog(shape, members):
        scheduler.push_many(key, [None] * calls)
    order = []
    for _ in range(FIRST):
        task = scheduler.pop()
        assert task is not None
        order.append(task.key)
        scheduler.ack(task.task_id)
    return order


def _wait_for(order: List[Any], what: str) -> None:
    deadline = time.monotonic() + WORKER_TIMEOUT
    while len(order) < FIRST and time.monotonic() < deadline:
        time.sleep(0.01)
    if len(order) < FIRST:
        raise RuntimeError(f"{what}: only {len(order)} of {FIRST} calls ran in {WORKER_TIMEOUT:g} s")


def celery_order(shape: str, members: int, redis_url: Optional[str]) -> List[Any]:
    """A real Celery worker (solo pool, one slot) in this process; Redis broker and storage with a URL."""
    from celery import Celery
    from ranch_celery import lru_task
    from ranch_celery.inprocess import in_process_worker

    run = uuid.uuid4().hex[:8]
    app = Celery(f"fairness_groups_{run}", broker=redis_url or "memory://", set_as_current=False)
    app.conf.update(
        task_default_queue=f"fairness-groups-{run}",
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_transport_options={"polling_interval": 0.005},
        broker_connection_retry_on_startup=True,
    )
    order: List[Any] = []

    @lru_task(app, shared=False, bind=True, name=f"fairness_groups.{shape}")
    def job(self: Any, n: int) -> None:
        order.append(self.request.lru_key)

    for key, calls in backlog(shape, members):
        job.lru_delay_many(key, [((n,), None) for n in range(calls)])  # TypeError: a storage without pairs
    with in_process_worker(app, hostname=f"fairness-groups-{run}@localhost"):
        _wait_for(order, "celery")
    return order


def dramatiq_order(shape: str, members: int, redis_url: Optional[str]) -> List[Any]:
    """A real ``dramatiq.Worker`` with one thread in this process; RedisBroker with a URL."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import CurrentMessage
    from ranch_dramatiq import Ranch, current_key, lru_actor

    broker: dramatiq.Broker
    if redis_url:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=redis_url)
    else:
        broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=10))
    dramatiq.set_broker(broker)
    run = uuid.uuid4().hex[:8]
    order: List[Any] = []

    def job(n: int) -> None:
        order.append(current_key())

    actor = lru_actor(
        broker=broker, actor_name=f"fairness_groups_{run}", queue_name=f"fg_{run}", max_retries=0
    )(job)
    try:
        for key, calls in backlog(shape, members):
            actor.lru_send_many(
                key, [((n,), None) for n in range(calls)]
            )  # TypeError: a storage without pairs
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            _wait_for(order, "dramatiq")
        finally:
            worker.stop(timeout=10_000)
    finally:
        broker.close()
    return order


def measure_shares(members: int, redis_url: Optional[str]) -> List[Dict[str, Any]]:
    runners: List[Tuple[str, str, Callable[[str], List[Any]]]] = [
        ("FairScheduler", "memory", lambda shape: core_order(shape, members)),
        ("Celery", "memory", lambda shape: celery_order(shape, members, None)),
        ("Dramatiq", "memory", lambda shape: dramatiq_order(shape, members, None)),
    ]
    if redis_url:
        runners += [
            ("Celery", "redis", lambda shape: celery_order(shape, members, redis_url)),
            ("Dramatiq", "redis", lambda shape: dramatiq_order(shape, members, redis_url)),
        ]
    rows = []
    for runner, storage, run in runners:
        for shape in ("pairs", "flat"):
            try:
                rows.append(share_row(runner, storage, shape, run(shape)))
            except TypeError as exc:  # RedisStorage before branch redis-groups: no pairs
                rows.append(refused_row(runner, storage, shape, exc))
            if redis_url and storage == "redis":
                _flush(redis_url)
    return rows


def print_shares(rows: List[Dict[str, Any]], members: int) -> None:
    print(
        f"(a) group A: 1 member, group B: {members} members, all backlogged, one worker slot; "
        f"each group's share of the first {FIRST} executions (target with pairs: 50 % +- 4)"
    )
    print(f"{'runner':<14}{'storage':<9}{'keys':<7}{'A':>8}{'B':>8}  verdict")
    for row in rows:
        head = f"{row['runner']:<14}{row['storage']:<9}{row['keys']:<7}"
        if "refused" in row:
            print(f"{head}{'-':>8}{'-':>8}  refused: {row['refused']}")
            continue
        share = row["share"]
        if row["keys"] == "pairs":
            verdict = "ok" if abs(share["A"] - 0.5) <= 0.04 else "MISSED (50 % +- 4)"
        else:
            verdict = f"flat: A is one key of {members + 1} ({1 / (members + 1):.1%})"
        print(f"{head}{share['A']:>8.1%}{share['B']:>8.1%}  {verdict}")


# --- (b) what selection costs as the keys grow ------------------------------------------------


def key_names(shape: str, keys: int) -> Tuple[List[Key], int]:
    """``keys`` distinct keys of ``shape`` and the number of groups they fall in."""
    if shape == "flat":
        return [f"k{n}" for n in range(keys)], keys
    groups = min(GROUPS, keys)
    return [(f"g{n % groups}", f"m{n // groups}") for n in range(keys)], groups


def pop_cost(
    scheduler: FairScheduler,
    shape: str,
    keys: int,
    steps: int,
    repeats: int,
    clock: Callable[[], float],
    server: Optional[Callable[[], float]] = None,
) -> Dict[str, Any]:
    """Fill ``keys`` keys with two calls each; then ``repeats`` chunks of ``steps`` pushes (to the
    keys in turn), ``steps`` pops and ``steps`` acks, each loop timed on its own. ``server``: the
    microseconds a Redis server spent in commands so far, read around the pops."""
    names, groups = key_names(shape, keys)
    started = time.perf_counter()
    for name in names:
        scheduler.push_many(name, [0, 0])
    filled = time.perf_counter() - started
    waiting = len(scheduler)
    push, pop, ack = scheduler.push, scheduler.pop, scheduler.ack
    best = {"push": float("inf"), "pop": float("inf"), "ack": float("inf")}
    server_pop = float("inf")
    sent = 0
    for _ in range(repeats):
        start = clock()
        for i in range(sent, sent + steps):
            push(names[i % keys], i)
        before = server() if server is not None else 0.0
        pushed = clock()
        tasks = [pop() for _ in range(steps)]
        popped = clock()
        if server is not None:
            server_pop = min(server_pop, (server() - before) / steps)
        for task in tasks:
            ack(task.task_id)  # type: ignore[union-attr]
        acked = clock()
        sent += steps
        for part, seconds in (("push", pushed - start), ("pop", popped - pushed), ("ack", acked - popped)):
            best[part] = min(best[part], seconds / steps)
    assert len(scheduler) == waiting, "the benchmark must not change the backlog size"
    return {
        "shape": shape,
        "keys": keys,
        "groups": groups,
        "members_per_group": keys // groups,
        "waiting": waiting,
        "steps": steps,
        "repeats": repeats,
        "fill_seconds": filled,
        "us_per_pop": best["pop"] * 1e6,
        "us_per_push": best["push"] * 1e6,
        "us_per_ack": best["ack"] * 1e6,
        "us_per_step": sum(best.values()) * 1e6,
        "server_us_per_pop": server_pop if server is not None else None,
    }


def measure_costs(
    storage: str,
    make: Callable[[str, int], Any],
    steps: int,
    repeats: int,
    after: Callable[[], None],
    clock: Callable[[], float],
    server: Optional[Callable[[], float]] = None,
) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for shape in SHAPES:
        for keys in KEY_COUNTS:
            try:
                row = pop_cost(FairScheduler(make(shape, keys)), shape, keys, steps, repeats, clock, server)
            except TypeError as exc:  # RedisStorage before branch redis-groups: no pairs
                rows.append({"storage": storage, "shape": shape, "keys": keys, "refused": f"{exc}"})
                after()
                break
            rows.append({"storage": storage, "clock": clock.__name__, **row})
            after()
    for row in rows:
        base = next((r for r in rows if r["shape"] == row["shape"] and r["keys"] == KEY_COUNTS[0]), None)
        if "refused" not in row and base is not None:
            row["pop_vs_10_keys"] = row["us_per_pop"] / base["us_per_pop"]
            row["step_vs_10_keys"] = row["us_per_step"] / base["us_per_step"]
            if row["server_us_per_pop"] is not None:
                row["server_pop_vs_10_keys"] = row["server_us_per_pop"] / base["server_us_per_pop"]
    return rows


def print_costs(rows: List[Dict[str, Any]]) -> None:
    print(
        "(b) selection cost: push + pop + ack through FairScheduler, every key backlogged (2 calls each); "
        "microseconds per pop and per push+pop+ack, fastest chunk (memory: CPU time; Redis: wall clock, "
        "and server: time inside Redis commands); x: against 10 keys (target: <= 1.5x)"
    )
    print(
        f"{'storage':<9}{'shape':<9}{'keys':>9}{'groups':>8}{'us/pop':>9}{'x':>7}{'us/step':>9}{'x':>7}"
        f"{'server us/pop':>15}{'x':>7}"
    )
    for row in rows:
        head = f"{row['storage']:<9}{row['shape']:<9}{row['keys']:>9,}"
        if "refused" in row:
            print(f"{head}  refused: {row['refused']}")
            continue
        server = ""
        if row["server_us_per_pop"] is not None:
            server = f"{row['server_us_per_pop']:>15.2f}{row['server_pop_vs_10_keys']:>6.2f}x"
        print(
            f"{head}{row['groups']:>8,}{row['us_per_pop']:>9.2f}{row['pop_vs_10_keys']:>6.2f}x"
            f"{row['us_per_step']:>9.2f}{row['step_vs_10_keys']:>6.2f}x{server}"
        )


def _server_usec(url: str, scripts_only: bool = False) -> Callable[[], float]:
    """The microseconds the server at ``url`` spent in commands so far (``INFO commandstats``;
    the INFO commands themselves left out); ``scripts_only``: in ``EVAL``/``EVALSHA`` calls alone
    (a script's time includes the commands it runs, which commandstats also lists on their own)."""
    import redis

    client = redis.Redis.from_url(url)
    prefixes = ("cmdstat_eval",) if scripts_only else ("cmdstat_",)

    def usec() -> float:
        stats = client.info("commandstats")
        return float(
            sum(
                entry["usec"]
                for name, entry in stats.items()
                if name.startswith(prefixes) and not name.startswith("cmdstat_info")
            )
        )

    return usec


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions in (b)")
    parser.add_argument("--redis", action="store_true", help="also on a throwaway redis-server")
    parser.add_argument("--members", type=int, default=60, help="members of group B (default 60)")
    parser.add_argument("--only", choices=("share", "cost"), help="run one of the two measures")
    parser.add_argument(
        "--server-time",
        choices=("all", "scripts"),
        default="scripts",
        help="Redis server time per pop: the EVALSHA calls alone (scripts, the default: a script's "
        "time includes the commands it runs) or every entry of INFO commandstats (all: a script's "
        "commands count twice)",
    )
    parser.add_argument("--out", default="benchmarks/results/fairness_groups.json")
    args = parser.parse_args(argv)
    if args.members < 1:
        parser.error("--members must be >= 1")
    logging.getLogger("dramatiq").setLevel(logging.ERROR)  # worker start and stop lines
    steps, repeats = (1_000, 10) if args.quick else (2_000, 40)  # per chunk, chunks
    redis_steps, redis_repeats = (200, 5) if args.quick else (250, 30)
    print(
        f"CPython {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    server: Any = None
    if args.redis:
        from ranch_redis.testing import RedisServer

        server = RedisServer()
        server.start()
    try:
        url = server.url if server is not None else None
        shares: List[Dict[str, Any]] = []
        costs: List[Dict[str, Any]] = []
        if args.only != "cost":
            shares = measure_shares(args.members, url)
            print()
            print_shares(shares, args.members)
        if args.only != "share":
            # CPU time of this thread: a chunk during which the VM ran someone else costs nothing extra.
            costs = measure_costs(
                "memory",
                lambda shape, keys: InMemoryStorage(),
                steps,
                repeats,
                lambda: None,
                time.thread_time,
            )
        if url is not None and args.only != "share":
            from ranch_redis import RedisStorage

            costs += measure_costs(
                "redis",
                lambda shape, keys: RedisStorage.from_url(url, namespace=f"fg-{shape}-{keys}"),
                redis_steps,
                redis_repeats,
                lambda: _flush(url),
                time.perf_counter,  # the server's time counts: wall clock
                _server_usec(url, scripts_only=args.server_time == "scripts"),
            )
        if costs:
            print()
            print_costs(costs)
    finally:
        if server is not None:
            server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(
            ["python", "benchmarks/fairness_groups.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "server_time": args.server_time,
        "members": args.members,
        "first": FIRST,
        "shares": shares,
        "costs": costs,
    }
    out.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
