"""The ``groups`` scenario's table: :func:`format_groups_report`."""

from __future__ import annotations

from typing import List, Sequence

from ranch_core.demo.groups_run import FIRST, GROUPS_TITLES, GroupsRun, GroupsWorkload


def groups_headline(workload: GroupsWorkload) -> str:
    """What the runs do, in one line."""
    tenants = ", ".join(
        f"'{tenant}' {count} user{'s' if count != 1 else ''}" for tenant, count in workload.members.items()
    )
    threads = f"{workload.slots} worker thread{'s' if workload.slots != 1 else ''}"
    return (
        f"ranch-demo --scenario groups (ranch-core, in-memory storage, {threads}, no server): "
        f"tenants {tenants}, every user always backlogged; {workload.work_ms:g} ms per call, "
        f"{workload.seconds:g} s per run"
    )


def format_groups_report(workload: GroupsWorkload, runs: Sequence[GroupsRun]) -> str:
    """Each tenant's share of the first :data:`FIRST` executions and of the whole run, per run."""
    width = max(max(len(GROUPS_TITLES[run.mode]) for run in runs), 22)
    half = width // 2
    head = f"{'tenant':<8} {'users':>6} |" + "|".join(f" {GROUPS_TITLES[run.mode]:^{width}} " for run in runs)
    sub = f"{'':<8} {'':>6} |" + "|".join(
        f" {f'first {FIRST}':>{half}}{'all':>{width - half}} " for _ in runs
    )
    lines: List[str] = [head, sub, "-" * len(head)]
    for tenant, count in workload.members.items():
        cells = "|".join(
            f" {run.share(tenant, FIRST):>{half}.2f}{run.share(tenant):>{width - half}.3f} " for run in runs
        )
        lines.append(f"{tenant:<8} {count:>6} |{cells}")
    calls = "|".join(f" {len(run.order):>{width}} " for run in runs)
    lines.append(f"{'calls':<8} {'':>6} |{calls}")
    lines.append("")
    lines.append(
        f"first {FIRST}: the tenant's share of the first {FIRST} executions; all: of every execution "
        "of the run; calls: executions in the run."
    )
    fair = workload.fair_share
    for run in runs:
        shares = ", ".join(f"{tenant} {run.share(tenant, FIRST):.2f}" for tenant in workload.tenants)
        lines.append(
            f"{GROUPS_TITLES[run.mode]}: {shares} of the first {FIRST} executions (fair: {fair:.2f} each)"
        )
    return "\n".join(line.rstrip() for line in lines)
