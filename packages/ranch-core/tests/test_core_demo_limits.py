"""``ranch-demo --scenario limits``: a capped flood, a rate-limited and a paused key next to free keys.

One real run (worker threads on the in-memory storage, without then with the
controls) is shared by the tests that read its numbers; the bounds are the
scheduler's guarantees, and the few on time leave a factor of 5 or more.
"""

from __future__ import annotations

import io
import json
import math
import re
import runpy
import sys
from typing import Dict, List, Tuple

import pytest
from ranch_core import demo
from ranch_core.demo import Execution, LimitsRun, LimitsWorkload
from ranch_core.demo.limits_chart import caption, peaks_over_time
from ranch_core.demo.limits_stats import most_in_window, peak_running

#: Small enough for about a second a run, big enough that every control shows:
#: 45 calls at 40/s take 1.1 s, 300 capped calls 0.3 s, the pause 0.3 s.
SMALL = LimitsWorkload(
    bulk_calls=300,
    rate_calls=45,
    rate="40/s",
    paused_calls=3,
    resume_after=0.3,
    interactive_keys=("a", "b", "c"),
    calls_per_key=2,
)
THREADS = 6


@pytest.fixture(scope="module")
def runs() -> Tuple[LimitsRun, LimitsRun]:
    return demo.run_free_and_limited(SMALL, workers=THREADS)


def _table_rows(table: str) -> Dict[str, List[List[str]]]:
    """key -> [free cells, limited cells] of the report's table."""
    rows = {}
    for line in table.splitlines():
        parts = line.split(" | ")
        if len(parts) == 3 and parts[0].split() and parts[0].split()[0] in SMALL.keys:
            rows[parts[0].split()[0]] = [parts[1].split(), parts[2].split()]
    return rows


def test_workload_plan_indices_and_controls() -> None:
    first, interactive = SMALL.plan()
    assert [key for key, _ in first] == ["bulk"] * 300 + ["api"] * 45 + ["paused"] * 3
    assert [key for key, _ in interactive] == ["a", "b", "c", "a", "b", "c"]
    assert [index for _, index in first + interactive] == list(range(SMALL.total))
    assert SMALL.total == 354
    assert SMALL.keys == ["bulk", "api", "paused", "a", "b", "c"]
    assert SMALL.controls() == {
        "bulk": "cap 2",
        "api": "40/s",
        "paused": "resumed at 0.3 s",
        "a": "-",
        "b": "-",
        "c": "-",
    }
    assert LimitsWorkload(burst=3).controls()["api"] == "20/s, burst 3"
    assert (SMALL.rate_limit.per_second, SMALL.rate_limit.burst) == (40.0, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bulk_limit": 0},
        {"bulk_calls": 1.5},
        {"rate": "10/d"},
        {"rate": "0/s"},
        {"burst": 0},
        {"resume_after": -1},
        {"interactive_keys": ("api",)},
        {"interactive_keys": ()},
        {"rate_key": "bulk"},
        {"paused_key": ""},
    ],
)
def test_workload_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        LimitsWorkload(**kwargs)


def _execution(key: str, index: int, start: float, end: float) -> Execution:
    return Execution(key, index, submitted_at=0.0, started_at=start, finished_at=end)


def test_peak_counts_overlaps_only() -> None:
    touching = [_execution("k", i, i * 1.0, i * 1.0 + 1.0) for i in range(4)]
    assert peak_running(touching) == 1  # one ends as the next starts
    overlapping = [*touching, _execution("k", 9, 0.5, 2.5)]
    assert peak_running(overlapping) == 2
    assert peak_running([]) == 0


def test_most_in_window_is_half_open() -> None:
    assert most_in_window([0.0, 0.5, 1.0, 1.2]) == 3  # [0.5, 1.5) holds 0.5, 1.0, 1.2
    assert most_in_window([0.0, 0.25, 0.5, 0.75, 1.0]) == 4
    assert most_in_window([]) == 0


def test_problems_name_each_control_not_held() -> None:
    records = [_execution("bulk", i, 0.0, 1.0) for i in range(3)]  # 3 at once, cap 2
    records += [_execution("api", 3 + i, 0.1 + i * 0.01, 0.2) for i in range(30)]  # 30 in 1 s at 20/s
    records += [_execution("paused", 33, 0.2, 0.3)]  # before its resume at 0.5
    workload = LimitsWorkload(
        bulk_calls=3, rate_calls=30, paused_calls=1, interactive_keys=("x",), calls_per_key=1
    )
    run = LimitsRun("limited", records, started=0.0, resumed_at=0.5)
    problems = run.problems(workload)
    assert problems[0] == "1 calls never ran (first: [34])"
    assert problems[1] == "bulk ran 3 at once, past its cap 2"
    assert problems[2] == "api started 30 calls in 1 s, more than 22"
    assert problems[3] == "paused ran before it was resumed"
    # The same records without controls are only incomplete.
    free = LimitsRun("free", records)
    assert free.problems(workload) == ["1 calls never ran (first: [34])"]
    with pytest.raises(ValueError):
        LimitsRun("fast", [])


def test_steady_rate_after_the_burst() -> None:
    records = [_execution("api", i, t, t) for i, t in enumerate([0.0, 0.0, 0.1, 0.2, 0.3])]
    run = LimitsRun("limited", records)
    assert run.steady_rate("api", 2) == pytest.approx(10.0)
    assert math.isnan(run.steady_rate("api", 5))
    assert run.first_start("nobody") is None and run.after_resume("api") is None


def test_run_holds_every_control_and_runs_every_call_once(runs: Tuple[LimitsRun, LimitsRun]) -> None:
    free, limited = runs
    assert free.problems(SMALL) == [] and limited.problems(SMALL) == []
    assert len(free.executions) == len(limited.executions) == SMALL.total
    # Cap: never above 2 of the 6 threads; without it the flood takes more.
    assert 1 <= limited.peak("bulk") <= SMALL.bulk_limit
    assert free.peak("bulk") > SMALL.bulk_limit
    # Rate: at most burst + 40 starts in any second (+1 for where a start is noted),
    # a steady rate no faster than 40/s, and a spread the free run does not have.
    assert limited.most_per_second("api") <= 1 + 40 + 1
    assert 40 / 5 <= limited.steady_rate("api", 1) <= 40 * 1.1
    # The free run starts them faster (all within a second on a quiet machine; not asserted: load).
    assert free.steady_rate("api", 1) > limited.steady_rate("api", 1)
    # Pause: nothing of the paused key before resume_key, and it ran after.
    after = limited.after_resume("paused")
    assert after is not None and after >= 0
    first = limited.first_start("paused")
    assert first is not None and first >= SMALL.resume_after
    assert limited.resumed_at is not None and free.resumed_at is None


def test_interactive_keys_are_not_delayed_by_the_capped_flood(runs: Tuple[LimitsRun, LimitsRun]) -> None:
    free, limited = runs
    worst_free, worst_limited = free.worst_interactive(SMALL), limited.worst_interactive(SMALL)
    # Within a few rounds of the active keys, as without controls; far from the flood's own wait.
    assert worst_limited.worst_exec <= 5 * max(worst_free.worst_exec, len(SMALL.keys))
    flood = limited.waits().stats("bulk")
    assert worst_limited.worst_exec * 5 < flood.worst_exec
    assert worst_limited.worst_ms * 5 < flood.worst_ms


def test_report_table_shows_the_cap_the_rate_and_the_waits(runs: Tuple[LimitsRun, LimitsRun]) -> None:
    free, limited = runs
    table = demo.format_limits_report(SMALL, free, limited)
    rows = _table_rows(table)
    assert set(rows) == set(SMALL.keys)
    # columns: tasks, at once, in 1 s, worst exec, worst ms
    free_bulk, limited_bulk = rows["bulk"]
    assert int(limited_bulk[1]) <= 2 < int(free_bulk[1])
    assert int(rows["api"][1][2]) == limited.most_per_second("api") <= 42
    assert int(rows["api"][0][2]) == 45
    assert rows["bulk"][0][2] == "-"  # starts per second only for the rate-limited key
    for key in SMALL.interactive_keys:
        assert int(rows[key][1][3]) == limited.waits().stats(key).worst_exec
    assert "every call ran exactly once, every control held" in table
    assert (
        f"bulk: at most {limited.peak('bulk')} running at once (cap 2) vs {free.peak('bulk')} without"
        in table
    )
    assert re.search(
        r"paused: held until resume_key at 0\.3\d s; its first call started [\d.]+ ms after", table
    )
    assert not any(line != line.rstrip() for line in table.splitlines())


def test_chart_draws_both_runs(tmp_path, runs: Tuple[LimitsRun, LimitsRun]) -> None:
    free, limited = runs
    chart = tmp_path / "limits.png"
    assert demo.write_limits_chart(str(chart), SMALL, free, limited)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = caption(SMALL, free, limited)
    assert f"'bulk' ran at most {limited.peak('bulk')} at once with its cap of 2" in text
    assert f"'api' started at most {limited.most_per_second('api')} calls in any second at 40/s" in text


def test_chart_is_skipped_without_matplotlib(
    tmp_path, monkeypatch, runs: Tuple[LimitsRun, LimitsRun]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not demo.write_limits_chart(str(tmp_path / "x.png"), SMALL, *runs)
    assert list(tmp_path.iterdir()) == []


def test_peaks_over_time_per_slice() -> None:
    records = [
        _execution("k", 0, 0.0, 0.015),
        _execution("k", 1, 0.005, 0.006),
        _execution("k", 2, 0.025, 0.03),
    ]
    run = LimitsRun("free", records)
    times, peaks = peaks_over_time(run, "k", width=0.01)
    assert times == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert peaks == [2, 1, 1, 0]
    assert peaks_over_time(run, "nobody") == ([0.0], [0])


def test_run_limits_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        demo.run_limits(SMALL, "plain")
    with pytest.raises(ValueError, match="workers"):
        demo.run_limits(SMALL, "free", workers=0)


def test_main_runs_the_limits_scenario(tmp_path) -> None:
    out = io.StringIO()
    chart, numbers = tmp_path / "limits.png", tmp_path / "limits.json"
    argv = ["--scenario", "limits", "--bulk", "200", "--keys", "2", "--calls", "2", "--workers", "4"]
    assert demo.main([*argv, "--chart", str(chart), "--json", str(numbers)], out=out) == 0
    text = out.getvalue()
    assert text.startswith(
        "ranch-demo --scenario limits (ranch-core FairScheduler, in-memory storage, 4 worker"
    )
    assert "200 calls for 'bulk', 30 for 'api', 5 for 'paused', then 2 each for 2 interactive keys" in text
    assert f"chart written to {chart}" in text and chart.exists()
    saved = json.loads(numbers.read_text())
    assert saved["scenario"] == "limits"
    assert [run["mode"] for run in saved["runs"]] == ["free", "limited"]
    assert saved["runs"][1]["keys"]["bulk"]["peak_running"] <= 2
    assert saved["workload"]["interactive_keys"] == ["alice", "bob"]


def test_limits_scenario_refuses_redis_and_bad_options() -> None:
    with pytest.raises(SystemExit, match="runs in memory only"):
        demo.main(["--scenario", "limits", "--redis", "redis://127.0.0.1:1/0"], out=io.StringIO())
    with pytest.raises(SystemExit, match="bulk_calls must be an int >= 1"):
        demo.main(["--scenario", "limits", "--bulk", "0"], out=io.StringIO())
    with pytest.raises(SystemExit, match="--workers must be >= 1"):
        demo.main(["--scenario", "limits", "--workers", "0"], out=io.StringIO())
    with pytest.raises(SystemExit, match="--keys must be >= 1"):
        demo.main(["--scenario", "limits", "--keys", "0"], out=io.StringIO())


def test_each_scenario_has_its_own_defaults() -> None:
    parser = demo.build_parser("ranch-demo", "celery")
    flood = demo.workload_from_args(parser.parse_args([]))
    assert (flood.bulk_calls, len(flood.interactive_keys), flood.work_seconds) == (300, 5, 0.005)
    limits = demo.limits_workload_from_args(parser.parse_args(["--scenario", "limits"]))
    assert (limits.bulk_calls, len(limits.interactive_keys), limits.work_seconds) == (1000, 3, 0.002)
    assert limits == LimitsWorkload()


def test_python_m_ranch_core_demo_is_the_same_command(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m ranch_core.demo", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("ranch_core.demo", run_name="__main__")
    assert done.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())  # argparse wraps the usage line at the terminal width
    assert usage.startswith(
        "usage: python -m ranch_core.demo [-h] [--scenario {flood,limits,runtime,groups}]"
    )
