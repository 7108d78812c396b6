"""``python -m ranch_dramatiq.demo``: the shared workload and report on Dramatiq."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from ranch_core.demo.workload import Workload
from ranch_dramatiq import demo

WORKLOAD = Workload(
    bulk_calls=120, interactive_keys=("alice", "bob", "carol"), calls_per_key=2, work_seconds=0.002
)


def test_in_process_fair_run_serves_the_quiet_keys_first() -> None:
    plain = demo.run(WORKLOAD, "plain", redis_url=None, workers=1)
    fair = demo.run(WORKLOAD, "fair", redis_url=None, workers=1)
    assert plain.check_complete(WORKLOAD) == [] and fair.check_complete(WORKLOAD) == []
    for key in WORKLOAD.interactive_keys:
        assert fair.stats(key).worst_exec <= 8
        assert plain.stats(key).worst_exec >= 60  # FIFO: behind most of the flood


@pytest.mark.redis
@pytest.mark.slow
def test_redis_run_with_worker_processes(redis_url: str) -> None:
    fair = demo.run(WORKLOAD, "fair", redis_url=redis_url, workers=2)
    assert fair.check_complete(WORKLOAD) == []
    # Run by the two worker processes, not here (under load one of them may take every call:
    # which process gets a wake-up is the broker's choice, not a guarantee of Ranch).
    workers = {e.worker for e in fair.executions}
    assert 1 <= len(workers) <= 2 and f"pid{os.getpid()}" not in workers
    for key in WORKLOAD.interactive_keys:
        assert fair.stats(key).worst_exec <= 12
    assert redis.Redis.from_url(redis_url).dbsize() == 0  # the run cleaned up after itself


def test_command_line(tmp_path: Path) -> None:
    out = io.StringIO()
    numbers = tmp_path / "demo.json"
    args = [
        "--bulk",
        "60",
        "--keys",
        "2",
        "--calls",
        "1",
        "--work-ms",
        "1",
        "--json",
        str(numbers),
    ]
    assert demo.main(args, out=out) == 0
    runs = json.loads(numbers.read_text())["runs"]
    assert [r["mode"] for r in runs] == ["plain", "fair"] and runs[0]["backend"].startswith("dramatiq")
    assert "ranch-demo (dramatiq, in-process, no server)" in out.getvalue()
    assert "worst wait of an interactive call" in out.getvalue()


def test_module_entry_point_and_bad_arguments() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ranch_dramatiq.demo",
            "--bulk",
            "30",
            "--keys",
            "2",
            "--calls",
            "1",
            "--work-ms",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Ranch fair" in done.stdout and "every call ran exactly once" in done.stdout
    with pytest.raises(ValueError):
        demo.run(WORKLOAD, "sideways", redis_url=None, workers=1)
    with pytest.raises(ValueError):
        demo.run(WORKLOAD, "fair", redis_url=None, workers=0)
