"""The demo's picture: :func:`write_chart` draws a plain and a fair run side by side (matplotlib).

Every axis counts *executions* (calls started), never milliseconds, so the
picture reads the same on a fast and a slow machine. Each key has its own
colour, used for that key only; the two runs (plain, fair) have two more.
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Sequence, Tuple

from ranch_core.demo.stats import MODE_TITLES, RunResult
from ranch_core.demo.workload import Workload

#: The bulk key: light grey, it is the background the quiet keys stand out from.
BULK_COLOUR = "#a0a0a0"
#: The two runs in the bar chart; no key uses these.
RUN_COLOURS = {"plain": "#3b3b3b", "fair": "#1f77b4"}
#: Colours of the interactive keys (tab10 without its grey and the runs' blue).
KEY_COLOURS = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


def key_colours(workload: Workload) -> Dict[str, Any]:
    """One distinct colour per key: grey for the bulk key, one hue per interactive key."""
    return colours_for(workload.bulk_key, workload.interactive_keys)


def colours_for(bulk_key: str, keys: Sequence[str]) -> Dict[str, Any]:
    """Grey for ``bulk_key``, one distinct hue for each of ``keys`` (none the runs' colours)."""
    colours: Dict[str, Any] = {bulk_key: BULK_COLOUR}
    if len(keys) <= len(KEY_COLOURS):
        colours.update(zip(keys, KEY_COLOURS))
    else:  # more keys than the palette: evenly spaced hues
        import matplotlib

        wheel = matplotlib.colormaps["hsv"]
        colours.update((key, wheel(i / len(keys))) for i, key in enumerate(keys))
    return colours


def caption(workload: Workload, plain: RunResult, fair: RunResult) -> str:
    """Why the first quiet call starts where it does, in numbers from the two runs."""
    parts = [
        "x: execution number (calls started so far). The quiet keys' calls are sent (dashed line) "
        f"{workload.interactive_delay * 1000:g} ms after the {workload.bulk_calls} calls of "
        f"'{workload.bulk_key}', while the workers are busy with them."
    ]
    for run in (plain, fair):
        first = run.first_quiet_call(workload)
        if first is not None:
            sent, started = first
            parts.append(
                f"{MODE_TITLES[run.mode]}: {sent} calls had started when the first quiet call was sent; "
                f"it started at execution {started}."
            )
    parts.append(
        "So no quiet call can start before the line; plain FIFO runs it after the rest of the flood, "
        f"Ranch within one round of the {len(workload.keys)} active keys."
    )
    return "\n".join(textwrap.fill(part, 175) for part in parts)


def _order_panel(ax: Any, workload: Workload, run: RunResult, colours: Dict[str, Any]) -> None:
    ordered = run.ordered()
    keys = workload.keys
    for row, key in enumerate(keys):
        xs = [pos for pos, e in enumerate(ordered) if e.key == key]
        bulk = key == workload.bulk_key
        ax.scatter(xs, [row] * len(xs), s=8 if bulk else 30, color=colours[key], label=key, zorder=2)
    first = run.first_quiet_call(workload)
    if first is not None:
        ax.axvline(first[0] - 0.5, color="black", linestyle="--", linewidth=1, zorder=1)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys)
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xlim(-2, max(1, len(ordered)) + 2)
    ax.set_title(f"{MODE_TITLES[run.mode]}: when each call ran")
    ax.set_xlabel("execution number")


def _bars(ax: Any, workload: Workload, plain: RunResult, fair: RunResult) -> None:
    interactive = list(workload.interactive_keys)
    xs = list(range(len(interactive)))
    tallest = 1
    for offset, run in ((-0.2, plain), (0.2, fair)):
        worst = [run.stats(k).worst_exec for k in interactive]
        tallest = max([tallest, *worst])
        colour = RUN_COLOURS[run.mode]
        bars = ax.bar([x + offset for x in xs], worst, width=0.4, label=MODE_TITLES[run.mode], color=colour)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(xs)
    ax.set_xticklabels(interactive, rotation=30)
    ax.set_ylabel("worst wait (executions)")
    ax.set_title("quiet keys: worst wait")
    ax.set_ylim(0, tallest * 1.3)  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=2, fontsize=8)


def _summary(ax: Any, workload: Workload, plain: RunResult, fair: RunResult, colours: Dict[str, Any]) -> None:
    from matplotlib.lines import Line2D

    ax.axis("off")
    handles: List[Any] = [
        Line2D([], [], color=colours[key], marker="o", linestyle="", markersize=6) for key in workload.keys
    ]
    labels = list(workload.keys)
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1))
    labels.append("quiet calls sent")
    ax.legend(handles, labels, loc="upper left", fontsize=8, ncol=2 if len(labels) > 6 else 1)
    worst: List[Tuple[str, int]] = [
        (MODE_TITLES[run.mode], max(run.stats(k).worst_exec for k in workload.interactive_keys))
        for run in (plain, fair)
    ]
    ax.text(
        0.0 if len(labels) > 6 else 0.45,
        0.0 if len(labels) > 6 else 0.98,
        f"{workload.bulk_calls} calls of '{workload.bulk_key}', then\n"
        f"{workload.calls_per_key} each for {len(workload.interactive_keys)} quiet keys,\n"
        f"{workload.work_seconds * 1000:g} ms of work per call\n\n"
        "worst quiet wait (executions):\n" + "\n".join(f"  {title:<10} {n}" for title, n in worst),
        va="bottom" if len(labels) > 6 else "top",
        family="monospace",
        fontsize=8,
        transform=ax.transAxes,
    )


def write_chart(path: str, workload: Workload, plain: RunResult, fair: RunResult) -> bool:
    """Draw the two runs to a PNG at ``path``; ``False`` if matplotlib is not installed.

    Left: when each call ran (execution number) per key, plain above fair,
    with a dashed line where the quiet keys' calls were sent. Right: each
    quiet key's worst wait in executions, plain vs fair, and a legend.
    Below: a caption saying why the first quiet call starts where it does.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colours = key_colours(workload)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), gridspec_kw={"width_ratios": [2.2, 1]})
    for row, run in enumerate((plain, fair)):
        _order_panel(axes[row][0], workload, run, colours)
    _bars(axes[0][1], workload, plain, fair)
    _summary(axes[1][1], workload, plain, fair, colours)
    fig.text(0.01, 0.01, caption(workload, plain, fair), fontsize=8.5, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
