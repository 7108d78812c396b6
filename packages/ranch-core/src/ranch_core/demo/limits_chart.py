"""The ``limits`` scenario's picture: :func:`write_limits_chart` (matplotlib).

Unlike the flood's chart, whose axes count executions, the x axis here is
seconds since the first send: a rate and a pause are about time. Colours as
in :mod:`~ranch_core.demo.chart`: grey for the capped flood, one hue for
every other key, two more for the runs (without, with the controls).
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Sequence, Tuple

from ranch_core.demo.chart import colours_for
from ranch_core.demo.limits_stats import LIMITS_TITLES, LimitsRun, start_end_events
from ranch_core.demo.limits_workload import LimitsWorkload

#: The two runs in the side panels; no key uses these.
LIMITS_RUN_COLOURS = {"free": "#3b3b3b", "limited": "#1f77b4"}
#: Width of the time slices in which the running calls' peak is drawn.
SLICE_SECONDS = 0.01


def peaks_over_time(run: LimitsRun, key: str, width: float = SLICE_SECONDS) -> Tuple[List[float], List[int]]:
    """``(slice starts, peaks)``: the most calls of ``key`` running at once in each ``width`` seconds."""
    events = start_end_events(run.of(key), run.started)
    slices = int(events[-1][0] / width) + 1 if events else 1
    peaks, running, position = [], 0, 0
    for number in range(slices):
        while position < len(events) and events[position][0] <= number * width:  # as the slice opens
            running += events[position][1]
            position += 1
        peak = running
        while position < len(events) and events[position][0] < (number + 1) * width:
            running += events[position][1]
            peak = max(peak, running)
            position += 1
        peaks.append(peak)
    return [number * width for number in range(slices)], peaks


def caption(workload: LimitsWorkload, free: LimitsRun, limited: LimitsRun) -> str:
    """What each control did, in numbers from the two runs."""
    bulk, api, _ = workload.limited_keys
    worst_free, worst_limited = free.worst_interactive(workload), limited.worst_interactive(workload)
    flood = limited.waits().stats(bulk)
    parts = [
        "x: seconds since the first call was sent. "
        f"'{bulk}' ran at most {limited.peak(bulk)} at once with its cap of {workload.bulk_limit} "
        f"(vs {free.peak(bulk)} without); '{api}' started at most {limited.most_per_second(api)} "
        f"calls in any second at {workload.rate} (vs {free.most_per_second(api)}); "
        f"'{workload.paused_key}' ran only after resume_key (dotted line).",
        f"The interactive keys' worst wait: {worst_limited.worst_exec} executions "
        f"({worst_limited.worst_ms:.0f} ms) with the controls, {worst_free.worst_exec} "
        f"({worst_free.worst_ms:.0f} ms) without, while the capped flood's own calls waited up to "
        f"{flood.worst_exec}: the flood never stood in their way.",
    ]
    return "\n".join(textwrap.fill(part, 210) for part in parts)


def _starts_panel(
    ax: Any, workload: LimitsWorkload, run: LimitsRun, colours: Dict[str, Any], end: float
) -> None:
    keys = workload.keys
    for row, key in enumerate(keys):
        xs = [e.started_at - run.started for e in run.of(key)]
        ax.scatter(xs, [row] * len(xs), s=4 if key == workload.bulk_key else 24, color=colours[key], zorder=2)
    interactive = [e.submitted_at for e in run.executions if e.key in workload.interactive_keys]
    if interactive:
        ax.axvline(min(interactive) - run.started, color="black", linestyle="--", linewidth=1, zorder=1)
    if run.resumed_at is not None:
        ax.axvline(run.resumed_at - run.started, color="black", linestyle=":", linewidth=1.5, zorder=1)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys)
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xlim(-0.02 * end, end * 1.02)
    ax.set_title(f"{LIMITS_TITLES[run.mode]}: when each call started")
    ax.set_xlabel("seconds")


def _running_panel(ax: Any, workload: LimitsWorkload, runs: Sequence[LimitsRun]) -> None:
    for run in runs:
        times, peaks = peaks_over_time(run, workload.bulk_key)
        colour = LIMITS_RUN_COLOURS[run.mode]
        ax.step(times, peaks, where="post", color=colour, linewidth=2.5, label=LIMITS_TITLES[run.mode])
    ax.axhline(workload.bulk_limit, color="black", linestyle="--", linewidth=1, label="cap")
    ax.set_title(f"'{workload.bulk_key}': calls running at once (most per {SLICE_SECONDS * 1000:g} ms)")
    ax.set_xlabel("seconds")
    ax.set_ylim(0, max(run.peak(workload.bulk_key) for run in runs) + 1.5)
    ax.legend(loc="upper right", fontsize=8)


def _rate_panel(ax: Any, workload: LimitsWorkload, runs: Sequence[LimitsRun]) -> None:
    rate = workload.rate_limit
    starts = {run.mode: [e.started_at - run.started for e in run.of(workload.rate_key)] for run in runs}
    for run in runs:
        xs = starts[run.mode]
        ax.step(xs, range(1, len(xs) + 1), where="post", color=LIMITS_RUN_COLOURS[run.mode])
    limited = starts["limited"]
    if limited:  # what the bucket allows from the first limited start on
        first, last = limited[0], limited[-1]
        ax.plot(
            [first, last],
            [rate.burst, rate.burst + rate.per_second * (last - first)],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"burst + {rate.text}",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"'{workload.rate_key}': calls started so far")
    ax.set_xlabel("seconds")


def _bars(ax: Any, workload: LimitsWorkload, runs: Sequence[LimitsRun]) -> None:
    interactive = list(workload.interactive_keys)
    xs = list(range(len(interactive)))
    tallest = 1
    for offset, run in zip((-0.2, 0.2), runs):
        waits = run.waits()
        worst = [waits.stats(k).worst_exec for k in interactive]
        tallest = max([tallest, *worst])
        bars = ax.bar(
            [x + offset for x in xs],
            worst,
            width=0.4,
            label=LIMITS_TITLES[run.mode],
            color=LIMITS_RUN_COLOURS[run.mode],
        )
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(xs)
    ax.set_xticklabels(interactive, rotation=30)
    ax.set_ylabel("worst wait (executions)")
    ax.set_title("interactive keys: worst wait")
    ax.set_ylim(0, tallest * 1.4)
    ax.legend(loc="upper center", ncol=2, fontsize=8)


def _legend(ax: Any, workload: LimitsWorkload, colours: Dict[str, Any]) -> None:
    from matplotlib.lines import Line2D

    ax.axis("off")
    controls = workload.controls()
    handles: List[Any] = [
        Line2D([], [], color=colours[key], marker="o", linestyle="", markersize=6) for key in workload.keys
    ]
    labels = [f"{key}: {controls[key]}" if controls[key] != "-" else key for key in workload.keys]
    handles += [Line2D([], [], color="black", linestyle=style, linewidth=1) for style in ("--", ":")]
    labels += ["interactive calls sent", "resume_key"]
    ax.legend(handles, labels, loc="upper left", fontsize=8)


def write_limits_chart(path: str, workload: LimitsWorkload, free: LimitsRun, limited: LimitsRun) -> bool:
    """Draw the two runs to a PNG at ``path``; ``False`` if matplotlib is not installed.

    Left: when each call started, per key, without controls above and with
    them below. Middle: the capped key's calls running at once against its
    cap, and the rate-limited key's starts against ``burst + rate * t``.
    Right: the interactive keys' worst wait, and a legend. Below: a caption
    with the numbers.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    others = [key for key in workload.keys if key != workload.bulk_key]
    colours = colours_for(workload.bulk_key, others)
    runs = (free, limited)
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), gridspec_kw={"width_ratios": [2, 1.2, 1]})
    end = max(run.elapsed for run in runs)
    for row, run in enumerate(runs):
        _starts_panel(axes[row][0], workload, run, colours, end)
    _running_panel(axes[0][1], workload, runs)
    _rate_panel(axes[1][1], workload, runs)
    _bars(axes[0][2], workload, runs)
    _legend(axes[1][2], workload, colours)
    fig.text(0.01, 0.01, caption(workload, free, limited), fontsize=8.5, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
