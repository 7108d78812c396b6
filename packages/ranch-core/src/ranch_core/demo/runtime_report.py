"""The ``runtime`` scenario's table and picture.

:func:`format_runtime_report` and :func:`write_runtime_chart` (matplotlib).
"""

from __future__ import annotations

from typing import List, Sequence

from ranch_core.demo.runtime_run import RUNTIME_TITLES, RuntimeRun, RuntimeWorkload


def runtime_headline(workload: RuntimeWorkload) -> str:
    """What the runs do, in one line."""
    calls = ", ".join(f"'{key}' {ms:g} ms" for key, ms in workload.run_ms.items())
    return (
        f"ranch-demo --scenario runtime (ranch-core, in-memory storage, {workload.slots} worker threads, "
        f"no server): keys always backlogged, calls of {calls}; {workload.seconds:g} s per run"
    )


def format_runtime_report(workload: RuntimeWorkload, runs: Sequence[RuntimeRun]) -> str:
    """Each key's share of the worker time and of the calls, one column pair per run."""
    width = max(len(RUNTIME_TITLES[run.mode]) for run in runs)
    width = max(width, 20)
    head = f"{'key':<8} {'ms':>6} |" + "|".join(f" {RUNTIME_TITLES[run.mode]:^{width}} " for run in runs)
    sub = f"{'':<8} {'':>6} |" + "|".join(
        f" {'time':>{width // 2}}{'calls':>{width - width // 2}} " for run in runs
    )
    lines: List[str] = [head, sub, "-" * len(head)]
    for key, ms in workload.run_ms.items():
        cells = "|".join(
            f" {run.time_share(key):>{width // 2}.3f}{run.calls[key]:>{width - width // 2}} " for run in runs
        )
        lines.append(f"{key:<8} {ms:>6g} |{cells}")
    lines.append("")
    lines.append("time: the key's share of the worker time; calls: calls of the key run.")
    fair = 1 / len(workload.run_ms)
    for run in runs:
        shares = ", ".join(f"{key} {run.time_share(key):.2f}" for key in workload.keys)
        lines.append(f"{RUNTIME_TITLES[run.mode]}: {shares} of the worker time (fair: {fair:.2f} each)")
    return "\n".join(line.rstrip() for line in lines)


def write_runtime_chart(path: str, workload: RuntimeWorkload, runs: Sequence[RuntimeRun]) -> bool:
    """Bars of each key's share of the worker time per run, to a PNG at ``path``;
    ``False`` if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = workload.keys
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(keys)
    for index, key in enumerate(keys):
        positions = [n + index * width for n in range(len(runs))]
        shares = [run.time_share(key) for run in runs]
        axes.bar(positions, shares, width, label=f"{key} ({workload.run_ms[key]:g} ms calls)")
    axes.axhline(1 / len(keys), color="black", linestyle="--", linewidth=1, label="fair share")
    axes.set_xticks([n + 0.4 - width / 2 for n in range(len(runs))])
    axes.set_xticklabels([RUNTIME_TITLES[run.mode] for run in runs])
    axes.set_ylabel("share of the worker time")
    axes.set_ylim(0, 1)
    axes.set_title(f"{workload.slots} worker threads, {workload.seconds:g} s per run")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
