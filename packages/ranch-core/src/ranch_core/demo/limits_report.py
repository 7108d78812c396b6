"""The table of the ``limits`` scenario, without and with the controls: :func:`format_limits_report`."""

from __future__ import annotations

import math
from typing import List

from ranch_core.demo.limits_stats import LIMITS_TITLES, LimitsRun
from ranch_core.demo.limits_workload import LimitsWorkload


def _num(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def headline(workload: LimitsWorkload, workers: int) -> str:
    """The two lines printed before the runs: where they run and what they send."""
    return (
        f"ranch-demo --scenario limits (ranch-core FairScheduler, in-memory storage, "
        f"{workers} worker threads, no server):\n"
        f"{workload.bulk_calls} calls for '{workload.bulk_key}', {workload.rate_calls} for "
        f"'{workload.rate_key}', {workload.paused_calls} for '{workload.paused_key}', then "
        f"{workload.calls_per_key} each for {len(workload.interactive_keys)} interactive keys; "
        f"{workload.work_seconds * 1000:g} ms per call"
    )


def _cells(workload: LimitsWorkload, run: LimitsRun, key: str) -> str:
    s = run.waits().stats(key)
    per_second = str(run.most_per_second(key)) if key == workload.rate_key else "-"
    return f"{s.tasks:>5}  {run.peak(key):>7}  {per_second:>7}  {s.worst_exec:>10}  {_num(s.worst_ms):>8}"


def _summary(workload: LimitsWorkload, free: LimitsRun, limited: LimitsRun) -> List[str]:
    bulk, api, paused = workload.limited_keys
    rate = workload.rate_limit
    lines = [
        f"{bulk}: at most {limited.peak(bulk)} running at once (cap {workload.bulk_limit}) "
        f"vs {free.peak(bulk)} without, of {limited.workers} threads",
        f"{api}: at most {limited.most_per_second(api)} started in any 1 s, "
        f"{limited.steady_rate(api, rate.burst):.1f}/s after its burst "
        f"({workload.rate}, burst {rate.burst}) vs {free.most_per_second(api)} in 1 s without",
    ]
    after = limited.after_resume(paused)
    if after is not None and limited.resumed_at is not None:
        lines.append(
            f"{paused}: held until resume_key at {limited.resumed_at - limited.started:.2f} s; "
            f"its first call started {after * 1000:.1f} ms after it"
        )
    worst_free, worst_limited = free.worst_interactive(workload), limited.worst_interactive(workload)
    flood = limited.waits().stats(bulk)
    lines.append(
        f"interactive keys: worst wait {worst_limited.worst_exec} executions "
        f"({_num(worst_limited.worst_ms)} ms) with limits vs {worst_free.worst_exec} "
        f"({_num(worst_free.worst_ms)} ms) without; "
        f"the capped flood's: {flood.worst_exec} ({_num(flood.worst_ms)} ms)"
    )
    return lines


def format_limits_report(workload: LimitsWorkload, free: LimitsRun, limited: LimitsRun) -> str:
    """Per key: its control, tasks, most running at once, most started in 1 s
    (rate-limited key), worst wait (executions, ms), without and with the
    controls; then what each control did."""
    header_cols = "tasks  at once   in 1 s  worst exec  worst ms"
    width = len(header_cols)
    controls = workload.controls()
    label = max(len(text) for text in controls.values())
    name = max(len(key) for key in workload.keys)
    left = name + 2 + label
    lines = [
        f"{'':<{left}} | {LIMITS_TITLES['free']:^{width}} | {LIMITS_TITLES['limited']:^{width}}",
        f"{'key':<{name}}  {'control':<{label}} | {header_cols} | {header_cols}",
        f"{'-' * left}-+-{'-' * width}-+-{'-' * width}",
    ]
    for key in workload.keys:
        lines.append(
            f"{key:<{name}}  {controls[key]:<{label}} | {_cells(workload, free, key)} | "
            f"{_cells(workload, limited, key)}"
        )
    lines.append("")
    title = max(len(t) for t in LIMITS_TITLES.values())
    for run in (free, limited):
        problems = run.problems(workload)
        status = "every call ran exactly once" if not problems else "; ".join(problems)
        if not problems and run.limited:
            status += ", every control held"
        lines.append(
            f"{LIMITS_TITLES[run.mode]:<{title}}: {len(run.executions)} calls in {run.elapsed:.2f} s "
            f"({run.workers} worker threads): {status}"
        )
    lines.extend(_summary(workload, free, limited))
    return "\n".join(line.rstrip() for line in lines)
