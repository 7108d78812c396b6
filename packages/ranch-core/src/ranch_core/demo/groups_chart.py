"""The ``groups`` scenario's picture: :func:`write_groups_chart` (matplotlib).

Left: each tenant's share of the executions per run, against the fair share.
Right: the first tenant's share of the first ``n`` executions as ``n`` grows,
one line per run (the issue's measure reads it at ``n`` = 100).
"""

from __future__ import annotations

from typing import Dict, Sequence

from ranch_core.demo.groups_run import FIRST, GROUPS_TITLES, GroupsRun, GroupsWorkload

#: One colour per run, the same in both panels.
RUN_COLOURS = {"plain": "#3b3b3b", "flat": "#ff7f0e", "groups": "#1f77b4"}
#: Line widths in the right panel: plain FIFO and flat keys draw the same line, so plain is wider.
LINE_WIDTHS: Dict[str, float] = {"plain": 4.0, "flat": 1.5, "groups": 1.5}
#: How many executions the right panel draws.
SHOWN = 500


def write_groups_chart(path: str, workload: GroupsWorkload, runs: Sequence[GroupsRun]) -> bool:
    """Draw the runs to a PNG at ``path``; ``False`` if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tenants = workload.tenants

    def users(tenant: str) -> str:
        count = workload.members[tenant]
        return f"{count} user{'s' if count != 1 else ''}"

    figure, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.3]})
    width = 0.8 / len(runs)
    for index, run in enumerate(runs):
        positions = [n + index * width for n in range(len(tenants))]
        shares = [run.share(tenant) for tenant in tenants]
        drawn = bars.bar(positions, shares, width, label=GROUPS_TITLES[run.mode], color=RUN_COLOURS[run.mode])
        bars.bar_label(drawn, fmt="%.2f", fontsize=7, padding=1)
    bars.axhline(workload.fair_share, color="black", linestyle="--", linewidth=1, label="fair share")
    bars.set_xticks([n + 0.4 - width / 2 for n in range(len(tenants))])
    bars.set_xticklabels([f"tenant {tenant}\n({users(tenant)})" for tenant in tenants])
    bars.set_ylabel("share of the executions")
    bars.set_ylim(0, 1.3)  # room for the legend above the bars
    bars.set_title(f"{workload.slots} worker thread(s), {workload.seconds:g} s per run")
    bars.legend(fontsize=8, loc="upper left", ncol=2)

    first = tenants[0]
    for run in runs:
        shares = run.running_share(first)[:SHOWN]
        lines.plot(
            range(1, len(shares) + 1),
            shares,
            label=GROUPS_TITLES[run.mode],
            color=RUN_COLOURS[run.mode],
            linewidth=LINE_WIDTHS[run.mode],
        )
    lines.axhline(workload.fair_share, color="black", linestyle="--", linewidth=1, label="fair share")
    lines.axvline(FIRST, color="grey", linestyle=":", linewidth=1)
    lines.set_xlabel("n: executions so far")
    lines.set_ylabel(f"tenant {first}'s share")
    lines.set_ylim(0, 1.05)
    lines.set_title(f"tenant {first} ({users(first)}): its share of the first n executions")
    lines.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
