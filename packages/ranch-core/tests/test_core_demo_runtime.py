"""``ranch-demo --scenario runtime``: 100 ms calls vs short ones, plain FIFO vs fair by
count vs fair by time (worker threads on the in-memory storage, real sleeps).

One real run of each mode is shared by the tests that read its numbers; the
bounds leave room for a busy machine (the issue's target is 0.45-0.55)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import List

import pytest
from ranch_core import demo
from ranch_core.demo import RuntimeRun, RuntimeWorkload

SMALL = RuntimeWorkload({"slow": 100.0, "fast": 5.0}, seconds=1.5, slots=4)


@pytest.fixture(scope="module")
def runs() -> List[RuntimeRun]:
    return [demo.run_runtime(SMALL, mode) for mode in demo.RUNTIME_MODES]


def test_by_count_the_slow_key_holds_the_workers_and_by_time_it_holds_half(runs: List[RuntimeRun]) -> None:
    plain, calls, runtime = runs
    assert plain.time_share("slow") > 0.85 and calls.time_share("slow") > 0.85
    assert abs(calls.calls["slow"] - calls.calls["fast"]) <= SMALL.slots  # by count: one turn each
    assert 0.35 <= runtime.time_share("slow") <= 0.65, runtime.to_dict()
    assert runtime.calls["fast"] > 5 * runtime.calls["slow"]


def test_report_and_json(runs: List[RuntimeRun], tmp_path: Path) -> None:
    report = demo.format_runtime_report(SMALL, runs)
    assert "Ranch, fair by time" in report and "slow" in report and "fast" in report
    out = io.StringIO()
    path = tmp_path / "numbers.json"
    code = demo.main(
        ["--scenario", "runtime", "--seconds", "0.3", "--workers", "2", "--json", str(path)], out=out
    )
    assert code == 0, out.getvalue()
    numbers = json.loads(path.read_text(encoding="utf-8"))
    assert numbers["scenario"] == "runtime" and [run["mode"] for run in numbers["runs"]] == list(
        demo.RUNTIME_MODES
    )
    assert "2 worker threads" in out.getvalue()


def test_chart(runs: List[RuntimeRun], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "runtime.png"
    assert demo.write_runtime_chart(str(path), SMALL, runs)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_refused() -> None:
    for argv in (["--seconds", "0"], ["--work-ms", "-1"], ["--redis", "redis://x"]):
        with pytest.raises(SystemExit, match="ranch-demo"):
            demo.main(["--scenario", "runtime", *argv], out=io.StringIO())
    with pytest.raises(ValueError, match="mode"):
        demo.run_runtime(SMALL, "fifo")
    with pytest.raises(ValueError, match="run_ms"):
        RuntimeWorkload({"only": 1.0})
