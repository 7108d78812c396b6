"""The side-by-side table of a plain and a fair run: :func:`format_report`."""

from __future__ import annotations

import math

from ranch_core.demo.stats import MODE_TITLES, RunResult
from ranch_core.demo.workload import Workload


def _num(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def format_report(workload: Workload, plain: RunResult, fair: RunResult) -> str:
    """The side-by-side table: per key, tasks and median/worst wait (executions, ms)."""
    header_cols = "tasks  med exec  worst exec   med ms  worst ms"
    width = len(header_cols)
    lines = [
        f"{'':<10} | {MODE_TITLES['plain'] + ' (the queue as is)':^{width}} | "
        f"{MODE_TITLES['fair'] + ' (lru_*)':^{width}}",
        f"{'key':<10} | {header_cols} | {header_cols}",
        f"{'-' * 10}-+-{'-' * width}-+-{'-' * width}",
    ]
    for key in workload.keys:
        cells = []
        for run in (plain, fair):
            s = run.stats(key)
            cells.append(
                f"{s.tasks:>5}  {_num(s.median_exec, 1):>8}  {s.worst_exec:>10}  "
                f"{_num(s.median_ms):>7}  {_num(s.worst_ms):>8}"
            )
        lines.append(f"{key:<10} | {cells[0]} | {cells[1]}")
    lines.append("")
    for run in (plain, fair):
        problems = run.check_complete(workload)
        status = "every call ran exactly once" if not problems else "; ".join(problems)
        lines.append(
            f"{MODE_TITLES[run.mode]:<10}: {len(run.executions)} calls in {run.elapsed:.2f} s "
            f"({run.backend or 'backend'}, {run.workers} worker(s)): {status}"
        )
    worst_plain = max(plain.stats(k).worst_exec for k in workload.interactive_keys)
    worst_fair = max(fair.stats(k).worst_exec for k in workload.interactive_keys)
    lines.append(
        f"worst wait of an interactive call: {worst_plain} executions (plain) vs {worst_fair} (fair)"
    )
    return "\n".join(lines)
