"""``ranch metrics``: the exporter process scraped over HTTP on loopback, fed by real pushes and pops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ranch_core import FairScheduler
from ranch_redis import RedisStorage

sys.path.insert(0, str(Path(__file__).parent))

from ranch_cli_procs import RANCH, Server, free_port

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


@pytest.fixture
def exporter(redis_url: str) -> Iterator[Server]:
    running = Server(redis_url, "metrics", "--top", "2")
    running.wait_listening()
    yield running
    assert running.stop() == 0


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_scrape_shows_backlogs_and_top_keys(redis_url: str, exporter: Server) -> None:
    clock = [100.0]
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace="celery:q"), clock=lambda: clock[0])
    scheduler.push_many("flood", list(range(40)))
    for key in ("quiet", "calm", "still"):
        scheduler.push(key, 1)
    clock[0] += 0.3
    served: List[str] = []
    for n in range(3):
        task = scheduler.pop()
        assert task is not None
        served.append(task.key)
        clock[0] += 2.0  # each runs 2 s; the first fails
        scheduler.finish(task.task_id, failed=n == 0)
    status, text = exporter.get()
    assert status == 200
    got = samples(text)
    b = (("backlog", "celery:q"),)
    assert got[("ranch_waiting_calls", b)] == 40
    assert got[("ranch_running_calls", b)] == 0
    assert got[("ranch_active_keys", b)] == 2
    assert got[("ranch_served_total", b)] == 3
    assert got[("ranch_wait_seconds_count", b)] == 3
    assert got[("ranch_wait_seconds_bucket", (*b, ("le", "0.1")))] == 0
    assert got[("ranch_wait_seconds_bucket", (*b, ("le", "0.5")))] == 1
    assert got[("ranch_wait_seconds_bucket", (*b, ("le", "5.0")))] == 3
    assert abs(got[("ranch_wait_seconds_sum", b)] - (0.3 + 2.3 + 4.3)) < 1e-9
    assert got[("ranch_failed_total", b)] == 1
    assert got[("ranch_run_seconds_count", b)] == 3
    assert got[("ranch_run_seconds_bucket", (*b, ("le", "1.0")))] == 0
    assert got[("ranch_run_seconds_bucket", (*b, ("le", "5.0")))] == 3
    assert abs(got[("ranch_run_seconds_sum", b)] - 6.0) < 1e-9
    # One round of the keys (calm, flood, quiet: key order at equal pass); per-key
    # series only for the top 2 keys by waiting: flood, then the one quiet key left.
    assert sorted(served) == ["calm", "flood", "quiet"]
    keyed = {labels for name, labels in got if name == "ranch_key_waiting_calls"}
    assert keyed == {(*b, ("key", "flood")), (*b, ("key", "still"))}
    assert got[("ranch_key_waiting_calls", (*b, ("key", "flood")))] == 39
    assert got[("ranch_key_served_total", (*b, ("key", "flood")))] == 1
    assert got[("ranch_key_wait_seconds_count", (*b, ("key", "flood")))] == 1
    assert got[("ranch_key_run_seconds_count", (*b, ("key", "flood")))] == 1
    assert ("ranch_key_failed_total", (*b, ("key", "flood"))) in got


def test_run_estimates_of_the_top_keys_are_a_gauge(redis_url: str, exporter: Server) -> None:
    clock = [50.0]
    storage = RedisStorage.from_url(redis_url, namespace="timed")
    scheduler = FairScheduler(storage, cost="runtime", clock=lambda: clock[0])
    scheduler.push_many("slow", [1, 2, 3])
    scheduler.push_many("unmeasured", [1, 2])
    task = scheduler.pop()
    assert task is not None and task.key == "slow"
    scheduler.finish(task.task_id, cost=0.25)
    got = samples(exporter.get()[1])
    b = (("backlog", "timed"),)
    estimate = got[("ranch_key_run_estimate_seconds", (*b, ("key", "slow")))]
    assert estimate == scheduler.run_estimate("slow") == 0.25
    # A key with no call measured yet has no sample (not a made-up 0).
    assert ("ranch_key_waiting_calls", (*b, ("key", "unmeasured"))) in got
    assert ("ranch_key_run_estimate_seconds", (*b, ("key", "unmeasured"))) not in got


def test_top_keys_bound_the_series(redis_url: str, exporter: Server) -> None:
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace="many"))
    for i in range(50):
        scheduler.push(f"k{i}", i)
    _, text = exporter.get()
    keyed = [labels for name, labels in samples(text) if name == "ranch_key_waiting_calls"]
    assert len(keyed) == 2
    assert exporter.get("/elsewhere")[0] == 404


def test_a_token_is_required_off_loopback_and_then_checked(redis_url: str) -> None:
    refused = subprocess.run(
        [RANCH, "metrics", "--host", "0.0.0.0", "--port", str(free_port())],
        env={**os.environ, "RANCH_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "needs a token" in refused.stderr
    token = "s3cret-token-0123456789"
    guarded = Server(redis_url, "metrics", "--host", "127.0.0.1", env={"RANCH_METRICS_TOKEN": token})
    guarded.wait_listening()
    try:
        assert guarded.get()[0] == 401
        assert guarded.get(token="wrong-token-0123456789")[0] == 401
        assert guarded.get(token=token)[0] == 200
    finally:
        assert guarded.stop() == 0


def test_unreachable_redis_exits_1(redis_url: str) -> None:
    done = subprocess.run(
        [RANCH, "metrics", "--port", str(free_port()), "--url", f"redis://127.0.0.1:{free_port()}/0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert sys.executable  # the script ran from this interpreter's environment
