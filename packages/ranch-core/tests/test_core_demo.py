"""The shared demo: workload, recording, waits, report and chart, driven by a thread backend.

The backend here is the smallest real one: a worker thread that runs calls
from a ``queue.Queue`` (plain FIFO) or from a ``FairScheduler`` (fair).
"""

from __future__ import annotations

import io
import queue
import sys
import tempfile
import threading
import time
import types
from typing import List, Optional

import pytest
from ranch_core import FairScheduler, demo
from ranch_core.demo import Execution, RunResult, Submission, Workload
from ranch_core.demo.chart import RUN_COLOURS, caption, key_colours


class ThreadBackend:
    """One worker thread, started once the workload is sent; ``fair`` pops
    from a FairScheduler, ``plain`` from a FIFO."""

    def run(self, workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult:
        assert redis_url is None
        fifo: queue.Queue[Submission] = queue.Queue()
        scheduler = FairScheduler()
        executions: List[Execution] = []
        done = threading.Event()

        def next_call() -> Optional[Submission]:
            if mode == "plain":
                try:
                    return fifo.get(timeout=0.01)
                except queue.Empty:
                    return None
            task = scheduler.pop()
            if task is None:
                time.sleep(0.001)
                return None
            scheduler.ack(task.task_id)
            return Submission(task.key, task.payload["index"], task.payload["submitted_at"])

        def worker() -> None:
            while len(executions) < workload.total:
                call = next_call()
                if call is not None:
                    executions.append(
                        demo.perform(call.key, call.index, call.submitted_at, workload.work_seconds)
                    )
            done.set()

        def submit(sub: Submission) -> None:
            if mode == "plain":
                fifo.put(sub)
            else:
                scheduler.push(sub.key, {"index": sub.index, "submitted_at": sub.submitted_at})

        started = time.time()
        # The whole workload is sent before the worker starts: what each run
        # serves first is then its order alone, not how fast the sender was
        # against the worker (under load or mutmut's tracing, either wins).
        demo.drive(workload, submit)
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        assert done.wait(30)
        thread.join(5)
        return RunResult(mode, executions, elapsed=time.time() - started, backend="threads", workers=1)


SMALL = Workload(bulk_calls=60, interactive_keys=("a", "b", "c"), calls_per_key=2, work_seconds=0.002)


def test_workload_plan_and_totals() -> None:
    bulk, interactive = SMALL.plan()
    assert bulk == [("bulk", i) for i in range(60)]
    assert interactive == [("a", 60), ("b", 61), ("c", 62), ("a", 63), ("b", 64), ("c", 65)]
    assert SMALL.total == 66
    assert SMALL.keys == ["bulk", "a", "b", "c"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bulk_calls": 0},
        {"bulk_calls": True},
        {"calls_per_key": -1},
        {"interactive_keys": ()},
        {"interactive_keys": ("a", "a")},
        {"interactive_keys": ("a", "")},
        {"interactive_keys": ("bulk",)},
        {"work_seconds": -0.1},
        {"work_seconds": float("nan")},
        {"bulk_key": ""},
    ],
)
def test_workload_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Workload(**kwargs)


def test_work_seconds_must_be_a_number() -> None:
    with pytest.raises(TypeError):
        Workload(work_seconds="5")  # type: ignore[arg-type]


def test_waits_count_the_calls_that_jumped_ahead() -> None:
    runs = [
        Execution("bulk", 0, submitted_at=0.0, started_at=1.0, finished_at=1.1),
        Execution("bulk", 1, submitted_at=0.0, started_at=2.0, finished_at=2.1),
        # sent at 1.5, i.e. after call 0 started: only call 1 jumped ahead of it.
        Execution("a", 2, submitted_at=1.5, started_at=3.0, finished_at=3.1),
    ]
    result = RunResult("plain", runs)
    assert result.waits() == {0: (0, 1000.0), 1: (1, 2000.0), 2: (1, 1500.0)}
    stats = result.stats("a")
    assert (stats.tasks, stats.worst_exec, stats.worst_ms) == (1, 1, 1500.0)
    assert result.check_complete(Workload(bulk_calls=2, interactive_keys=("a",), calls_per_key=1)) == []


def test_check_complete_reports_missing_and_duplicates() -> None:
    one = Execution("bulk", 0, 0.0, 1.0, 1.0)
    result = RunResult("fair", [one, one])
    problems = result.check_complete(Workload(bulk_calls=2, interactive_keys=("a",), calls_per_key=1))
    assert problems[0] == "call 0 ran 2 times"
    assert "2 calls never ran" in problems[1]


def test_execution_json_round_trip() -> None:
    record = Execution("k", 3, 1.0, 2.0, 3.0, "w1")
    assert Execution.from_json(record.to_json()) == record
    assert Execution.from_json(record.to_json().encode()) == record
    with pytest.raises(ValueError):
        Execution.from_json("[1, 2]")


def test_run_result_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError):
        RunResult("fast", [])


def test_fair_run_serves_interactive_keys_first_and_report_shows_it(tmp_path) -> None:
    backend = ThreadBackend()
    plain, fair = demo.run_both(backend, SMALL, redis_url=None, workers=1)
    assert plain.check_complete(SMALL) == [] and fair.check_complete(SMALL) == []
    # FIFO: interactive calls wait behind the rest of the flood.
    plain_worst = max(plain.stats(k).worst_exec for k in SMALL.interactive_keys)
    fair_worst = max(fair.stats(k).worst_exec for k in SMALL.interactive_keys)
    assert plain_worst > 20
    # Fair: one round of the 4 active keys per interactive call.
    assert fair_worst <= 2 * len(SMALL.keys)
    table = demo.format_report(SMALL, plain, fair)
    assert "plain FIFO" in table and "Ranch fair" in table
    for key in SMALL.keys:
        assert any(line.startswith(f"{key:<10} |") for line in table.splitlines())
    assert "every call ran exactly once" in table
    chart = tmp_path / "chart.png"
    assert demo.write_chart(str(chart), SMALL, plain, fair)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The caption explains where the first quiet call starts, with the runs' own numbers.
    text = caption(SMALL, plain, fair)
    for run in (plain, fair):
        first = run.first_quiet_call(SMALL)
        assert first is not None and first[0] <= first[1]
        assert f"{first[0]} calls had started when the first quiet call was sent; " in text
        assert f"it started at execution {first[1]}." in text


def test_chart_gives_every_key_and_both_runs_their_own_colour() -> None:
    for count in (3, 8, 12):
        workload = Workload(bulk_calls=5, interactive_keys=tuple(f"k{i}" for i in range(count)))
        colours = [str(c) for c in key_colours(workload).values()]
        assert len(set(colours)) == count + 1
        assert not set(colours) & set(RUN_COLOURS.values())


def test_main_runs_a_backend_by_name(tmp_path, monkeypatch) -> None:
    package = types.ModuleType("ranch_threadsdemo")
    module = types.ModuleType("ranch_threadsdemo.demo")
    module.run = ThreadBackend().run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ranch_threadsdemo", package)
    monkeypatch.setitem(sys.modules, "ranch_threadsdemo.demo", module)
    out = io.StringIO()
    chart = tmp_path / "c.png"
    numbers = tmp_path / "n.json"
    argv = ["--backend", "threadsdemo", "--bulk", "40", "--keys", "2", "--calls", "1", "--work-ms", "1"]
    code = demo.main([*argv, "--chart", str(chart), "--json", str(numbers)], out=out)
    assert code == 0
    text = out.getvalue()
    assert f"chart written to {chart}" in text and chart.exists()
    assert '"mode": "fair"' in numbers.read_text()


def test_main_writes_no_file_unless_asked(tmp_path, monkeypatch) -> None:
    package = types.ModuleType("ranch_threadsdemo")
    module = types.ModuleType("ranch_threadsdemo.demo")
    module.run = ThreadBackend().run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ranch_threadsdemo", package)
    monkeypatch.setitem(sys.modules, "ranch_threadsdemo.demo", module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    out = io.StringIO()
    argv = ["--backend", "threadsdemo", "--bulk", "20", "--keys", "1", "--calls", "1", "--work-ms", "0"]
    assert demo.main(argv, out=out) == 0
    assert "chart" not in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="backends shipped with Ranch: celery, dramatiq") as unknown:
        demo.load_backend("nosuchqueue")
    assert "pip install" not in str(unknown.value)  # no hint naming a package that does not exist
    with pytest.raises(SystemExit, match="bad backend name"):
        demo.load_backend("no-such")
