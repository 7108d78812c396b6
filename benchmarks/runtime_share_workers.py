"""Fair by time with real workers: the slow key's share of worker time on Celery and Dramatiq.

The measure of issue 12 with real workers on a real Redis (a throwaway
``redis-server`` from ``ranch_redis.testing``, 127.0.0.1, a free port, stopped
afterwards): two always-backlogged keys whose calls really sleep 100 ms
("slow") and 5 ms ("fast"), 4 worker slots, per (adapter, cost):

- **Celery:** ``lru_task(app, cost=...)``, broker and storage on that Redis,
  one ``celery worker -P threads -c 4`` subprocess (``task_acks_late``,
  prefetch multiplier 1, results ignored). Threads, not prefork: the calls
  only sleep, so the GIL costs nothing, and one process with 4 threads is
  the same shape as the Dramatiq worker (prefork would add a pipe hop per
  message, the same under both costs).
- **Dramatiq:** ``lru_actor(cost=...)`` on a ``RedisBroker`` with the
  ``Ranch`` middleware, one ``dramatiq --processes 1 --threads 4`` worker.

This process keeps both keys backlogged (``lru_delay_many`` /
``lru_send_many`` of 500 calls whenever fewer than 1,000 of a key wait). Each
call appends ``key thread start end popped`` to a Redis list: ``time.time()``
around the sleep, and the time its lease started (the storage's ``started``
record, written by the pop on the same clock), read in the same script
call that appends. Over the window ``[first start + warm-up, + seconds]``,
per key (the table gives the slow key's share of each):

- *time*: its calls' sleeps inside the window (the worker time the issue's
  target is about);
- *held*: from each call's pop to the end of its sleep: the lease, less the
  finish step (what ``cost="runtime"`` charged before the adapters timed the
  function; now each call is charged its function's run time: the sleep and
  the record that follows it);
- *slot*: the sleep plus the gap on its worker thread since that thread's
  previous call ended (taking the call, the previous call's finish, waiting
  for a wake-up message): all the thread's time;
- *calls*: calls started in the window; *busy*: both keys' sleeps over the
  window's slot time; *pop->start*: mean ms from a call's pop to its start.

Run by ``benchmarks/runtime_share.py`` (which prints the table and writes the
JSON), or alone:

    python benchmarks/runtime_share_workers.py [--quick] [--seconds 60] [--adapters celery,dramatiq]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

RUN_SECONDS = {"slow": 0.100, "fast": 0.005}
SLOTS = 4
LOW = 1000  # a key is topped up when fewer than this many of its calls wait
BATCH = 500  # calls pushed per top-up
RECORDS = "rt:calls"  # the workers' list of "key thread start end"
ENV_URL = "RANCH_RT_REDIS_URL"
ENV_ADAPTER = "RANCH_RT_ADAPTER"
ENV_COST = "RANCH_RT_COST"
HERE = Path(__file__).resolve().parent


#: Appends ``ARGV[1]`` and the call's pop time (the storage's ``started`` field of the lease,
#: ``-`` if none) to the records: one round trip, as a plain ``RPUSH`` would take.
RECORD_LUA = (
    "return redis.call('RPUSH', KEYS[2], ARGV[1] .. ' ' .. (redis.call('HGET', KEYS[1], ARGV[2]) or '-'))"
)
RECORD_SHA = hashlib.sha1(RECORD_LUA.encode()).hexdigest()


def record(client: Any, namespace: str, task_id: str, key: str, seconds: float) -> None:
    """A call's body: sleep, then note the key, the worker thread, when it ran and when it was
    popped (the storage's record, where a ``cost="runtime"`` charge counts from)."""
    import threading

    from ranch_redis import layout

    start = time.time()
    time.sleep(seconds)
    end = time.time()
    line = f"{key} {os.getpid()}:{threading.get_ident()} {start!r} {end!r}"
    client.evalsha(RECORD_SHA, 2, layout.started_key(namespace), RECORDS, line, task_id)


def build_celery(url: str, cost: str) -> Tuple[Any, Any]:
    """The Celery app and task (also what the worker subprocess imports)."""
    import redis
    from celery import Celery
    from ranch_celery import lru_task

    client = redis.Redis.from_url(url)
    app = Celery("runtime_share_workers", broker=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    client.script_load(RECORD_LUA)

    @lru_task(app, name="rt.job", shared=False, bind=True, cost=cost)
    def job(self: Any, key: str, seconds: float) -> None:
        record(client, self.lru_dispatcher.scheduler.storage.namespace, self.request.id, key, seconds)

    return app, job


def build_dramatiq(url: str, cost: str) -> Tuple[Any, Any]:
    """The Dramatiq broker and actor (also what the worker subprocess imports)."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import CurrentMessage
    from ranch_dramatiq import Ranch, lru_actor

    client = redis.Redis.from_url(url)
    client.script_load(RECORD_LUA)
    broker = RedisBroker(url=url)
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch())

    @lru_actor(broker=broker, actor_name="rt_job", max_retries=0, cost=cost)
    def job(key: str, seconds: float) -> None:
        message = CurrentMessage.get_current_message()
        task_id = message.message_id if message is not None else "-"
        record(client, job.dispatcher.scheduler.storage.namespace, task_id, key, seconds)

    return broker, job


if ENV_URL in os.environ and __name__ != "__main__":  # imported by a worker subprocess
    if os.environ[ENV_ADAPTER] == "celery":
        app, job = build_celery(os.environ[ENV_URL], os.environ[ENV_COST])
    else:
        import dramatiq

        broker, job = build_dramatiq(os.environ[ENV_URL], os.environ[ENV_COST])
        dramatiq.set_broker(broker)


def start_worker(adapter: str, url: str, cost: str, log: Path) -> subprocess.Popen[bytes]:
    """One worker subprocess with :data:`SLOTS` threads, in its own process group, output to ``log``."""
    env = dict(os.environ, **{ENV_URL: url, ENV_ADAPTER: adapter, ENV_COST: cost})
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    if adapter == "celery":
        command = [
            sys.executable, "-m", "celery", "-A", "runtime_share_workers", "worker", "-P", "threads",
            "-c", str(SLOTS), "-n", "rt@%h", "--prefetch-multiplier", "1",
            "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "dramatiq", "runtime_share_workers", "--path", str(HERE),
            "--processes", "1", "--threads", str(SLOTS), "--skip-logging",
        ]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pusher(adapter: str, task: Any) -> Callable[[str, int], Any]:
    """What stores ``n`` calls of ``key`` in one bulk submit."""
    many = task.lru_delay_many if adapter == "celery" else task.lru_send_many
    return lambda key, n: many(key, [((key, RUN_SECONDS[key]), None)] * n)


Record = Tuple[str, str, float, float, Optional[float]]  # key, thread, start, end, popped


def parse(line: bytes) -> Record:
    key, thread, start, end, popped = line.decode().split()
    return key, thread, float(start), float(end), None if popped == "-" else float(popped)


def shares(records: List[Record], t0: float, t1: float) -> Dict[str, Any]:
    """Inside ``[t0, t1]``, per key: worker time (the calls' sleeps), held time (from each call's
    pop to the end of its sleep), slot time (the sleep plus the gap on its thread since that
    thread's previous call ended), calls started, and the mean wait from pop to start (ms)."""

    def clipped(start: float, end: float) -> float:
        return max(0.0, min(end, t1) - max(start, t0))

    busy: Dict[str, float] = defaultdict(float)
    held: Dict[str, float] = defaultdict(float)
    slot: Dict[str, float] = defaultdict(float)
    calls: Dict[str, int] = defaultdict(int)
    to_start: Dict[str, List[float]] = defaultdict(list)
    last_end: Dict[str, float] = {}
    for key, thread, start, end, popped in sorted(records, key=lambda r: r[2]):
        busy[key] += clipped(start, end)
        held[key] += clipped(start if popped is None else min(popped, start), end)
        slot[key] += clipped(last_end.get(thread, start), end)
        last_end[thread] = end
        if t0 <= start < t1:
            calls[key] += 1
            if popped is not None:
                to_start[key].append(start - popped)
    keys = list(RUN_SECONDS)
    return {
        "busy_seconds": {k: busy[k] for k in keys},
        "held_seconds": {k: held[k] for k in keys},
        "slot_seconds": {k: slot[k] for k in keys},
        "calls": {k: calls[k] for k in keys},
        "pop_to_start_ms": {k: 1000 * sum(to_start[k]) / max(len(to_start[k]), 1) for k in keys},
    }


def read_passes(client: Any, task: Any) -> Dict[str, float]:
    """Each key's pass in the storage (field ``p`` of its state hash): with ``cost="runtime"``
    the seconds charged to it since the run began (its running calls at their estimates)."""
    from ranch_redis import layout

    dispatcher = task.lru_dispatcher if hasattr(task, "lru_dispatcher") else task.dispatcher
    namespace = dispatcher.scheduler.storage.namespace
    return {key: float(client.hget(layout.key_state_key(namespace, key), "p") or 0) for key in RUN_SECONDS}


def charged_beyond_sleep(records: List[Record], passes: Dict[str, float]) -> Dict[str, float]:
    """Per key, ms charged per call beyond its sleep, over the whole run (warm-up included):
    ``(pass - sleeps) / calls``; each call's charge is its function's run time as the adapter
    times it (the sleep, then the record's round trip to Redis)."""
    out = {}
    for key in RUN_SECONDS:
        mine = [end - start for k, _, start, end, _ in records if k == key]
        out[key] = 1000 * (passes[key] - sum(mine)) / max(len(mine), 1)
    return out


def measure(adapter: str, cost: str, url: str, seconds: float, warmup: float) -> Dict[str, Any]:
    """One run: both keys backlogged, one worker, ``warmup + seconds``; one result row."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    handle, task = build_celery(url, cost) if adapter == "celery" else build_dramatiq(url, cost)
    push = pusher(adapter, task)
    for key in RUN_SECONDS:
        push(key, LOW + BATCH)
    log = Path(tempfile.mkdtemp(prefix="ranch-rt-")) / f"{adapter}-{cost}.log"
    proc = start_worker(adapter, url, cost, log)
    top_ups = 0
    try:
        deadline = time.monotonic() + 60
        while not client.llen(RECORDS):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{adapter}/{cost}: the worker did not start:\n{log_tail(log)}")
            time.sleep(0.05)
        first = float(client.lindex(RECORDS, 0).split()[2])
        t0 = first + warmup
        t1 = t0 + seconds
        while time.time() < t1:
            if proc.poll() is not None:
                raise RuntimeError(f"{adapter}/{cost}: the worker stopped:\n{log_tail(log)}")
            for key in RUN_SECONDS:
                if task.get_client_metadata(key)["pending_tasks"] < LOW:
                    push(key, BATCH)
                    top_ups += 1
            time.sleep(0.2)
        estimates = {key: task.get_client_metadata(key)["run_estimate"] for key in RUN_SECONDS}
        pending = {key: task.get_client_metadata(key)["pending_tasks"] for key in RUN_SECONDS}
    finally:
        stop_worker(proc)
        shutil.rmtree(log.parent, ignore_errors=True)
    passes = read_passes(client, task)  # the worker has stopped: every call it ran is settled
    records = [parse(line) for line in client.lrange(RECORDS, 0, -1)]
    charged = charged_beyond_sleep(records, passes) if cost == "runtime" else None
    row: Dict[str, Any] = {"adapter": adapter, "cost": cost, "seconds": seconds, "warmup": warmup}
    row.update(shares(records, t0, t1))
    busy, held, slot, calls = row["busy_seconds"], row["held_seconds"], row["slot_seconds"], row["calls"]
    row.update(
        slots=SLOTS,
        pool="threads" if adapter == "celery" else "dramatiq threads",
        slow_time_share=busy["slow"] / sum(busy.values()),
        slow_held_share=held["slow"] / sum(held.values()),
        slow_slot_share=slot["slow"] / sum(slot.values()),
        slow_call_share=calls["slow"] / sum(calls.values()),
        utilisation=sum(busy.values()) / (SLOTS * seconds),
        slot_utilisation=sum(slot.values()) / (SLOTS * seconds),
        run_estimates=estimates,
        pass_at_end=passes,
        charged_beyond_sleep_ms=charged,
        pending_at_end=pending,
        top_ups=top_ups,
    )
    if adapter == "dramatiq":
        handle.close()
    client.close()
    return row


def run_all(seconds: float, warmup: float, adapters: List[str], echo: bool = True) -> List[Dict[str, Any]]:
    """Every (adapter, cost) pair on one throwaway redis-server."""
    from ranch_redis.testing import RedisServer

    rows = []
    with RedisServer() as server:
        for adapter in adapters:
            for cost in ("calls", "runtime"):
                row = measure(adapter, cost, server.url, seconds, warmup)
                if echo:
                    print(
                        f"  {adapter} cost={cost}: slow {row['slow_time_share']:.3f} of the time, "
                        f"{row['calls']['slow']}/{row['calls']['fast']} calls",
                        flush=True,
                    )
                rows.append(row)
    return rows


def table(rows: List[Dict[str, Any]]) -> str:
    """The rows as a text table."""
    lines = [
        f"{'adapter':<9} {'cost':<8} {'slow: time':>11} {'held':>6} {'slot':>6} {'calls':>6} "
        f"{'calls slow/fast':>16} {'busy':>5} {'pop->start ms slow/fast':>24}"
    ]
    for row in rows:
        pair = f"{row['calls']['slow']}/{row['calls']['fast']}"
        wait = f"{row['pop_to_start_ms']['slow']:.1f}/{row['pop_to_start_ms']['fast']:.1f}"
        lines.append(
            f"{row['adapter']:<9} {row['cost']:<8} {row['slow_time_share']:>11.3f} "
            f"{row['slow_held_share']:>6.3f} {row['slow_slot_share']:>6.3f} {row['slow_call_share']:>6.3f} "
            f"{pair:>16} {row['utilisation']:>5.2f} {wait:>24}"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds skipped at the start of a run")
    parser.add_argument("--adapters", default="celery,dramatiq")
    parser.add_argument("--quick", action="store_true", help="8 s per run, 2 s warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup = 8.0, 2.0
    print(table(run_all(args.seconds, args.warmup, args.adapters.split(","))))


if __name__ == "__main__":
    main()
