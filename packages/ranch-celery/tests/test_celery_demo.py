"""ranch-demo: in-process (no server) and on a real Redis with worker processes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from ranch_celery import demo
from ranch_core.demo.cli import main as demo_main
from ranch_core.demo.workload import Workload

SMALL = ["--bulk", "80", "--keys", "3", "--calls", "2", "--work-ms", "2"]
# Two workers drain faster than one: more work per call, so most of the flood is still queued when
# the quiet calls come, even when a loaded machine slows the producer (10 ms let 100 of 120 run first).
ON_REDIS = ["--bulk", "80", "--keys", "3", "--calls", "2", "--work-ms", "30"]


def _check_numbers(path, total: int) -> None:
    numbers = json.loads(path.read_text())
    plain, fair = numbers["runs"]
    assert (plain["mode"], fair["mode"]) == ("plain", "fair")
    interactive = ["alice", "bob", "carol"]
    plain_worst = max(plain["keys"][k]["worst_exec"] for k in interactive)
    fair_worst = max(fair["keys"][k]["worst_exec"] for k in interactive)
    # FIFO: behind (most of) the flood; fair: within a few rounds of the 4 active keys.
    assert plain_worst >= 40
    assert fair_worst <= 3 * 4
    for run in (plain, fair):
        assert run["executions"] == total


def test_demo_in_process_prints_the_table_and_draws_the_chart(tmp_path) -> None:
    out = io.StringIO()
    chart, numbers = tmp_path / "demo.png", tmp_path / "demo.json"
    code = demo_main(
        [*SMALL, "--chart", str(chart), "--json", str(numbers)], default_backend="celery", out=out
    )
    assert code == 0
    text = out.getvalue()
    assert "in-process, no server" in text
    assert "every call ran exactly once" in text
    assert f"chart written to {chart}" in text
    assert chart.read_bytes()[:4] == b"\x89PNG"
    _check_numbers(numbers, 86)


@pytest.mark.redis
@pytest.mark.slow
def test_demo_on_redis_with_two_worker_processes(redis_url, tmp_path) -> None:
    numbers = tmp_path / "demo.json"
    completed = subprocess.run(
        [sys.executable, "-m", "ranch_celery.demo", *ON_REDIS, "--redis", redis_url, "--workers", "2",
         "--json", str(numbers)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "2 worker process(es)" in completed.stdout
    assert "celery redis, 2 worker(s)): every call ran exactly once" in completed.stdout
    _check_numbers(numbers, 86)


def test_run_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError):
        demo.run(Workload(bulk_calls=1), "fastest", redis_url=None, workers=1)
