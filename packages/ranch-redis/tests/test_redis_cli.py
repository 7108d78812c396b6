"""The ``ranch`` command line against a real redis-server fed by real pushes.

The installed console script runs as a process where that is what is checked
(its entry point, the exit codes, the one-line errors without a traceback);
the other tests call its ``main`` in this process, which prints and returns
the same (a process costs 0.25 s of start-up, more under coverage).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import redis
from ranch_core import FairScheduler
from ranch_redis import RedisStorage, layout
from ranch_redis.testing import RedisClusterServers

sys.path.insert(0, str(Path(__file__).parent))

from ranch_cli_procs import free_port, run, run_here


def ranch(
    url: str, *args: str, env_url: bool = True, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``ranch *args`` with ``RANCH_REDIS_URL`` set to ``url`` (or unset): its ``main``
    here, or the installed console script in a process of its own."""
    return (run if process else run_here)(url if env_url else None, *args)


def as_json(url: str, *args: str) -> Any:
    done = ranch(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def backlog(redis_url: str) -> Iterator[FairScheduler]:
    """A Celery-style backlog (namespace ``celery:<queue>``) holding a flood and two quiet keys."""
    storage = RedisStorage.from_url(redis_url, namespace=f"celery:q{uuid.uuid4().hex[:8]}")
    scheduler = FairScheduler(storage)
    scheduler.push_many("bulk", list(range(30)))
    scheduler.push("alice", "a1", task_id="a1")
    scheduler.push("alice", "a2", task_id="a2")
    scheduler.push("bob", "b1", task_id="b1")
    yield scheduler
    storage.close()


def ns(scheduler: FairScheduler) -> str:
    return str(scheduler.storage.namespace)  # type: ignore[attr-defined]


def test_backlogs_lists_the_registry_without_scanning(redis_url: str, backlog: FairScheduler) -> None:
    other = RedisStorage.from_url(redis_url, namespace="dramatiq:default")
    FairScheduler(other).push("k", 1)
    other.close()
    admin = redis.Redis.from_url(redis_url)
    admin.config_resetstat()
    rows = as_json(redis_url, "backlogs")
    assert [r["backlog"] for r in rows] == sorted([ns(backlog), "dramatiq:default"])
    mine = next(r for r in rows if r["backlog"] == ns(backlog))
    assert (mine["backlog_size"], mine["active_keys"], mine["leased"]) == (33, 3, 0)
    stats = admin.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_keys"} & set(stats), stats
    table = ranch(redis_url, "backlogs", "--namespace", "dramatiq", process=True)
    assert table.returncode == 0 and "dramatiq:default" in table.stdout and ns(backlog) not in table.stdout
    admin.close()


def test_status_and_key(redis_url: str, backlog: FairScheduler) -> None:
    task = backlog.pop()  # new keys tie at pass 0: the first in key order
    assert task is not None and task.task_id == "a1"
    status = as_json(redis_url, "status", ns(backlog))
    assert (status["waiting"], status["running"], status["served_total"]) == (32, 1, 1)
    prefix, _, name = ns(backlog).partition(":")
    key = as_json(redis_url, "key", name, "alice", "--namespace", prefix)
    assert (key["pending_tasks"], key["running"], key["served_total"]) == (1, 1, 1)
    text = ranch(redis_url, "key", ns(backlog), "bulk")
    assert text.returncode == 0 and "waiting            30" in text.stdout


def test_keys_in_each_order(redis_url: str, backlog: FairScheduler) -> None:
    first = backlog.pop()  # alice: the fair order is now bob, bulk, alice
    assert first is not None and first.key == "alice"
    page = as_json(redis_url, "keys", ns(backlog))
    assert [(r["key"], r["waiting"]) for r in page["keys"]] == [("bulk", 30), ("bob", 1), ("alice", 1)]
    fair = as_json(redis_url, "keys", ns(backlog), "--sort", "wait")
    assert [(r["key"], r["place"]) for r in fair["keys"]] == [("bob", 0), ("bulk", 1), ("alice", 2)]
    served = as_json(redis_url, "keys", ns(backlog), "--sort", "served", "--limit", "1")
    assert [(r["key"], r["served"], r["running"]) for r in served["keys"]] == [("alice", 1, 1)]
    assert served["total"] == 1
    text = ranch(redis_url, "keys", ns(backlog), "--limit", "2")
    assert text.returncode == 0
    assert text.stdout.splitlines()[2].split()[:4] == ["bulk", "30", "0", "0"]
    assert "2 of 3 keys by waiting; 3 active" in text.stdout


def test_why_a_call_waits(redis_url: str, backlog: FairScheduler) -> None:
    assert pop_id(backlog) == "a1"
    why = as_json(redis_url, "why", ns(backlog), "a2")
    assert (why["state"], why["key"], why["position"], why["place"]) == ("waiting", "alice", 0, 2)
    assert why["blocked_by"] is None and why["dispatches_ahead"] == 2
    backlog.pause_key("alice")
    paused = ranch(redis_url, "why", ns(backlog), "a2")
    assert paused.returncode == 0 and "held by: pause" in paused.stdout
    assert pop_id(backlog) == "b1"
    assert pop_id(backlog) not in ("a2", "b1")  # a bulk call runs
    backlog.set_concurrency_limit("bulk", 1)
    capped = as_json(redis_url, "why", ns(backlog), bulk_ids(redis_url, ns(backlog))[0])
    assert capped["blocked_by"] == "concurrency limit" and capped["running"] == 1
    backlog.set_rate_limit("bob", "1/h")
    backlog.push("bob", "b2", task_id="b2")
    assert pop_id(backlog) == "b2"  # alice paused, bulk capped: bob's bucket is spent now
    backlog.push("bob", "b3", task_id="b3")
    rated = ranch(redis_url, "why", ns(backlog), "b3")
    assert "held by: rate limit 1/h" in rated.stdout, rated.stdout
    assert as_json(redis_url, "why", ns(backlog), "b1")["state"] == "running"
    assert as_json(redis_url, "why", ns(backlog), "gone")["state"] == "missing"
    backlog.push("carol", "c1", task_id="c1", delay=3600, expiry=60)
    delayed = as_json(redis_url, "why", ns(backlog), "c1")
    assert (delayed["state"], delayed["key"]) == ("delayed", "carol")
    assert delayed["due_at"] - delayed["enqueued_at"] == pytest.approx(3600)
    text = ranch(redis_url, "why", ns(backlog), "c1").stdout
    assert (
        "is delayed" in text and "joins the tail of its key in 60m" in text and "expiry comes first" in text
    )


def pop_id(scheduler: FairScheduler) -> str:
    task = scheduler.pop()
    assert task is not None
    return task.task_id


def bulk_ids(url: str, namespace: str) -> List[str]:
    client = redis.Redis.from_url(url)
    ids = [raw.decode() for raw in client.lrange(layout.queue_key(namespace, "bulk"), 0, 0)]
    client.close()
    return ids


def test_act_changes_the_storage(redis_url: str, backlog: FairScheduler) -> None:
    name = ns(backlog)
    assert ranch(redis_url, "pause", name, "alice").returncode == 0
    assert backlog.metadata("alice").paused
    assert ranch(redis_url, "resume", name, "alice").returncode == 0
    assert not backlog.metadata("alice").paused
    assert as_json(redis_url, "set-weight", name, "bob", "0.5")["weight"] == 0.5
    assert backlog.metadata("bob").weight == 0.5
    assert ranch(redis_url, "set-limit", name, "bulk", "3").returncode == 0
    assert backlog.metadata("bulk").concurrency_limit == 3
    assert ranch(redis_url, "set-limit", name, "bulk", "none").returncode == 0
    assert backlog.metadata("bulk").concurrency_limit is None
    assert ranch(redis_url, "set-rate", name, "bulk", "10/m", "--burst", "2").returncode == 0
    assert backlog.metadata("bulk").rate_limit == "10/m"
    purged = as_json(redis_url, "purge", name, "bulk")
    assert purged["purged"] == 30 and backlog.metadata("bulk").pending_tasks == 0
    assert as_json(redis_url, "keys", name)["total"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-weight", "{ns}", "bob", "0"], "weight must be between"),
        (["set-weight", "{ns}", "bob", "heavy"], "weight must be a number"),
        (["set-limit", "{ns}", "bob", "0"], "limit must be"),
        (["set-limit", "{ns}", "bob", "two"], "limit must be a whole number"),
        (["set-rate", "{ns}", "bob", "fast"], "rate"),
        (["keys", "{ns}", "--limit", "0"], "must be at least 1"),
        (["keys", "{ns}", "--sort", "name"], "invalid choice"),
        (["keys", "nope:nope"], "unknown backlog 'nope:nope'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_and_change_nothing(
    redis_url: str, backlog: FairScheduler, args: List[str], message: str
) -> None:
    before = backlog.metadata("bob")
    done = ranch(redis_url, *[a.format(ns=ns(backlog)) for a in args])
    assert done.returncode == 2, done
    assert message in done.stderr and "Traceback" not in done.stderr
    assert backlog.metadata("bob") == before


def test_no_url_is_a_usage_error(redis_url: str) -> None:
    done = ranch(redis_url, "backlogs", env_url=False, process=True)
    assert done.returncode == 2 and "RANCH_REDIS_URL" in done.stderr


def test_unreachable_redis_exits_1_with_one_line(redis_url: str) -> None:
    done = ranch(redis_url, "backlogs", "--url", f"redis://127.0.0.1:{free_port()}/0", process=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not reachable" in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_namespace_limited_acl_user_still_pushes(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    admin = redis.Redis.from_url(redis_url)
    name = f"acl{uuid.uuid4().hex[:6]}"
    admin.acl_setuser(name, enabled=True, passwords=["+pw"], keys=[f"ranch:{{{name}}}:*"], commands=["+@all"])
    storage = RedisStorage.from_url(redis_url.replace("redis://", f"redis://{name}:pw@"), namespace=name)
    FairScheduler(storage).push("k", 1)  # the registry write is refused: logged, the push stands
    assert storage.waiting() == 1
    assert "is not listed in the registry" in caplog.text
    assert not admin.sismember(layout.registry_key(), name)
    storage.close()
    admin.acl_deluser(name)
    admin.close()


def test_registry_is_written_once_a_minute(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace="reg")
    scheduler = FairScheduler(storage)
    admin = redis.Redis.from_url(redis_url)
    scheduler.push("k", 0)
    assert admin.smembers(layout.registry_key()) == {b"reg"}
    admin.delete(layout.registry_key())  # e.g. a FLUSHALL
    for i in range(20):
        scheduler.push("k", i + 1)
    assert not admin.exists(layout.registry_key())  # no write per push
    storage._register_at = 0.0  # the minute has passed: the next push heals the registry
    scheduler.push("k", 99)
    assert admin.smembers(layout.registry_key()) == {b"reg"}
    storage.close()
    admin.close()


def test_tables_say_what_they_hold(redis_url: str) -> None:
    empty = ranch(redis_url, "backlogs")
    assert empty.returncode == 0 and "no backlogs registered" in empty.stdout
    clock = [100.0]
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace="tables"), clock=lambda: clock[0])
    scheduler.push("late", 1, expiry=1.0, task_id="late1")  # enqueued at 100 on this clock: expired now
    scheduler.push("solo", 1, task_id="solo1")
    scheduler.set_concurrency_limit("solo", 4)
    scheduler.set_rate_limit("solo", "10/s", burst=2)
    scheduler.set_max_backlog("solo", 100)
    scheduler.pause_key("solo")
    text = ranch(redis_url, "keys", "tables").stdout
    assert "paused, max 4, 10/s, backlog<=100" in text and "never" in text
    assert "held by: its expiry" in ranch(redis_url, "why", "tables", "late1").stdout
    assert "is not stored" in ranch(redis_url, "why", "tables", "nope").stdout
    clock[0] = 100.5
    running = scheduler.pop()
    assert running is not None and running.task_id == "late1"
    assert "is running: leased until" in ranch(redis_url, "why", "tables", "late1").stdout
    assert scheduler.ack("late1")
    scheduler.purge_key("solo")
    assert ranch(redis_url, "keys", "tables").stdout.startswith("no keys")


def test_bad_pages_are_refused_before_anything_is_sent(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, namespace="pages")
    with pytest.raises(ValueError, match="order must be one of waiting, wait, served"):
        storage.keys_page("name")
    with pytest.raises(ValueError, match=r"limit must be in 1\.\.10000"):
        storage.keys_page("waiting", 0)
    with pytest.raises(TypeError, match="offset must be an int"):
        storage.keys_page("waiting", 5, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task_id must be a str"):
        storage.why(7, 0.0)  # type: ignore[arg-type]
    storage.close()


def test_the_command_on_a_redis_cluster(redis_cluster: RedisClusterServers) -> None:
    names = [f"clu{uuid.uuid4().hex[:6]}-{n}" for n in range(2)]
    for name in names:  # two namespaces: two hash slots, most likely on two nodes
        storage = RedisStorage.from_url(redis_cluster.url, namespace=name, cluster=True)
        FairScheduler(storage).push_many("k", [1, 2, 3])
        storage.close()
    listed = {b["backlog"]: b["backlog_size"] for b in as_json(redis_cluster.url, "backlogs", "--cluster")}
    assert {name: listed.get(name) for name in names} == dict.fromkeys(names, 3)
    page = as_json(redis_cluster.url, "keys", names[1], "--cluster")
    assert [(k["key"], k["waiting"]) for k in page["keys"]] == [("k", 3)]
    assert ranch(redis_cluster.url, "pause", names[0], "k", "--cluster").returncode == 0
    assert as_json(redis_cluster.url, "key", names[0], "k", "--cluster")["paused"] is True


def test_pairs_show_as_group_slash_member_and_as_two_lists(redis_url: str) -> None:
    """Two-level keys: a table shows ``group/member``, ``--json`` a list of two; ``--member``
    names a pair on the command line."""
    storage = RedisStorage.from_url(redis_url, namespace=f"celery:p{uuid.uuid4().hex[:8]}")
    scheduler = FairScheduler(storage)
    scheduler.push(("acme", "u1"), 1, task_id="p1")
    scheduler.push(("acme", "u1"), 2, task_id="p2")
    scheduler.push("acme", 3, task_id="own")
    name = ns(scheduler)
    page = as_json(redis_url, "keys", name)
    assert [(r["key"], r["waiting"]) for r in page["keys"]] == [(["acme", "u1"], 2), ("acme", 1)]
    assert page["active_keys"] == 2
    table = ranch(redis_url, "keys", name)
    assert table.returncode == 0 and table.stdout.splitlines()[2].split()[:2] == ["acme/u1", "2"]
    pair = as_json(redis_url, "key", name, "acme", "--member", "u1")
    assert (pair["key"], pair["pending_tasks"]) == (["acme", "u1"], 2)
    group = as_json(redis_url, "key", name, "acme")
    assert (group["key"], group["pending_tasks"]) == ("acme", 3)  # a string key covers its group
    done = ranch(redis_url, "set-weight", name, "acme", "0.5", "--member", "u1")
    assert done.returncode == 0 and "'acme/u1'" in done.stdout, done.stdout
    assert storage.metadata(("acme", "u1")).weight == 0.5
    assert storage.metadata("acme").weight == 1.0
    why = as_json(redis_url, "why", name, "p1")
    assert (why["state"], why["key"], why["position"]) == ("waiting", ["acme", "u1"], 0)
    assert "key 'acme/u1' is waiting" in ranch(redis_url, "why", name, "p1").stdout
    storage.close()
