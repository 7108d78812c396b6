"""The ``ranch-demo`` command line: :func:`main`.

Four scenarios. ``flood`` (the default) runs the same flood twice on a task
queue, plain FIFO vs Ranch. ``limits`` runs a capped flood, a rate-limited
key and a paused key next to free keys twice on ranch-core alone (worker
threads on the in-memory storage), without and with the per-key controls.
``runtime`` keeps a key of 100 ms calls and one of short calls backlogged,
three times on ranch-core alone: plain FIFO, fair by count, fair by time.
``groups`` keeps a tenant of one user and a tenant of 60 users backlogged,
three times on ranch-core alone: plain FIFO, Ranch with a flat key per user,
Ranch with ``(tenant, user)`` keys.

It writes nothing but its report on stdout, unless asked: the chart only
with ``--chart PATH``, the numbers only with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import attrs

from ranch_core.demo.backend import check_redis_installed, load_backend, run_both
from ranch_core.demo.chart import write_chart
from ranch_core.demo.groups_chart import write_groups_chart
from ranch_core.demo.groups_report import format_groups_report, groups_headline
from ranch_core.demo.groups_run import GroupsWorkload, run_all_groups
from ranch_core.demo.limits_chart import write_limits_chart
from ranch_core.demo.limits_report import format_limits_report, headline
from ranch_core.demo.limits_run import run_free_and_limited
from ranch_core.demo.limits_workload import LimitsWorkload
from ranch_core.demo.report import format_report
from ranch_core.demo.runtime_report import format_runtime_report, runtime_headline, write_runtime_chart
from ranch_core.demo.runtime_run import RuntimeWorkload, run_all
from ranch_core.demo.workload import Workload

#: Names of the interactive keys, in order (``user<N>`` after these).
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")

#: What ``ranch-demo --scenario NAME`` runs.
SCENARIOS = ("flood", "limits", "runtime", "groups")

#: Each scenario's value of the options left out (``work_ms`` is ``--work-ms``).
DEFAULTS: Dict[str, Dict[str, Union[int, float]]] = {
    "flood": {"bulk": 300, "keys": 5, "calls": 3, "work_ms": 5.0, "workers": 2},
    "limits": {"bulk": 1000, "keys": 3, "calls": 3, "work_ms": 2.0, "workers": 8},
    "runtime": {"bulk": 0, "keys": 0, "calls": 0, "work_ms": 5.0, "workers": 4, "seconds": 3.0},
    "groups": {"bulk": 0, "keys": 0, "calls": 0, "work_ms": 2.0, "workers": 1, "seconds": 2.0, "members": 60},
}
#: The ``runtime`` scenario's slow key and the time its calls take (ms).
SLOW_KEY, SLOW_MS = "slow", 100.0
#: The ``groups`` scenario's tenants: the first has one user, the second ``--members``.
SMALL_TENANT, BIG_TENANT = "A", "B"


def build_parser(prog: str, default_backend: str) -> argparse.ArgumentParser:
    """The options every ``ranch-demo`` understands."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run the same flood twice, plain FIFO vs Ranch fair scheduling, and compare the waits "
            "(--scenario limits: without vs with per-key controls)."
        ),
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="flood",
        help="flood: plain vs Ranch on a task queue (default); limits: a capped flood, a rate-limited "
        "and a paused key next to free keys, without vs with the controls (ranch-core, worker threads); "
        "runtime: 100 ms calls vs short ones, plain vs fair by count vs fair by time (ranch-core); "
        "groups: a tenant of 1 user vs one of 60, plain vs flat keys vs (tenant, user) keys (ranch-core)",
    )
    parser.add_argument("--backend", default=default_backend, help=f"task queue (default: {default_backend})")
    parser.add_argument("--redis", metavar="URL", help="run on this Redis with worker processes")
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes with --redis (default: 2); threads with limits (8), runtime (4), groups (1)",
    )
    parser.add_argument("--bulk", type=int, help="calls of the bulk key (default: 300; limits: 1000)")
    parser.add_argument("--keys", type=int, help="number of interactive keys (default: 5; limits: 3)")
    parser.add_argument("--calls", type=int, help="calls per interactive key (default: 3)")
    parser.add_argument(
        "--work-ms", type=float, help="work per call in ms (default: 5; limits: 2; runtime: the fast key's)"
    )
    parser.add_argument(
        "--seconds", type=float, help="runtime, groups: seconds per run (default: 3; groups: 2)"
    )
    parser.add_argument("--members", type=int, help="groups: users of tenant B (default: 60; tenant A has 1)")
    parser.add_argument("--chart", metavar="PATH", help="draw the two runs to this PNG (matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON here")
    return parser


def setting(args: argparse.Namespace, name: str) -> Any:
    """Option ``name`` as given, else its default in the chosen scenario."""
    value = getattr(args, name, None)
    if value is None:
        return DEFAULTS[getattr(args, "scenario", "flood")][name]
    return value


def _interactive_keys(args: argparse.Namespace) -> List[str]:
    count = setting(args, "keys")
    if count < 1:
        raise SystemExit("ranch-demo: --keys must be >= 1")
    return [NAMES[i] if i < len(NAMES) else f"user{i}" for i in range(count)]


def workload_from_args(args: argparse.Namespace) -> Workload:
    """The :class:`Workload` the command-line options describe."""
    keys = _interactive_keys(args)
    try:
        return Workload(
            bulk_calls=setting(args, "bulk"),
            interactive_keys=tuple(keys),
            calls_per_key=setting(args, "calls"),
            work_seconds=setting(args, "work_ms") / 1000.0,
        )
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"ranch-demo: {exc}") from None


def limits_workload_from_args(args: argparse.Namespace) -> LimitsWorkload:
    """The :class:`LimitsWorkload` the command-line options describe (the controls are its defaults)."""
    keys = _interactive_keys(args)
    try:
        return LimitsWorkload(
            bulk_calls=setting(args, "bulk"),
            interactive_keys=tuple(keys),
            calls_per_key=setting(args, "calls"),
            work_seconds=setting(args, "work_ms") / 1000.0,
        )
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"ranch-demo: {exc}") from None


def _write_json(path: str, numbers: Dict[str, Any], out: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(numbers, handle, indent=2)
    print(f"numbers written to {path}", file=out)


def _outputs(
    args: argparse.Namespace, out: Any, draw: Callable[[str], bool], numbers: Callable[[], Dict[str, Any]]
) -> None:
    """The chart (``--chart``: ``draw(path)``, ``False`` without matplotlib) and the numbers (``--json``)."""
    if args.chart:
        if draw(args.chart):
            print(f"chart written to {args.chart}", file=out)
        else:
            print("chart skipped: matplotlib is not installed (pip install matplotlib)", file=out)
    if args.json:
        _write_json(args.json, numbers(), out)


def _limits(args: argparse.Namespace, workers: int, out: Any) -> int:
    if args.redis:
        raise SystemExit(
            "ranch-demo: --scenario limits runs in memory only (worker threads, no server); drop --redis"
        )
    workload = limits_workload_from_args(args)
    print(headline(workload, workers), file=out)
    free, limited = run_free_and_limited(workload, workers=workers)
    print(file=out)
    print(format_limits_report(workload, free, limited), file=out)
    _outputs(
        args,
        out,
        lambda path: write_limits_chart(path, workload, free, limited),
        lambda: {
            "scenario": "limits",
            "workload": attrs.asdict(workload),
            "runs": [run.to_dict(workload) for run in (free, limited)],
        },
    )
    return 1 if free.problems(workload) or limited.problems(workload) else 0


def _runtime(args: argparse.Namespace, workers: int, out: Any) -> int:
    if args.redis:
        raise SystemExit(
            "ranch-demo: --scenario runtime runs in memory only (worker threads, no server); drop --redis"
        )
    try:
        workload = RuntimeWorkload(
            {SLOW_KEY: SLOW_MS, "fast": setting(args, "work_ms")}, setting(args, "seconds"), workers
        )
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"ranch-demo: {exc}") from None
    print(runtime_headline(workload), file=out)
    runs = run_all(workload)
    print(file=out)
    print(format_runtime_report(workload, runs), file=out)
    _outputs(
        args,
        out,
        lambda path: write_runtime_chart(path, workload, runs),
        lambda: {
            "scenario": "runtime",
            "workload": attrs.asdict(workload),
            "runs": [r.to_dict() for r in runs],
        },
    )
    return 1 if any(not calls for run in runs for calls in run.calls.values()) else 0


def _groups(args: argparse.Namespace, workers: int, out: Any) -> int:
    if args.redis:
        raise SystemExit(
            "ranch-demo: --scenario groups runs in memory only (worker threads, no server); drop --redis"
        )
    try:
        workload = GroupsWorkload(
            {SMALL_TENANT: 1, BIG_TENANT: setting(args, "members")},
            setting(args, "work_ms"),
            setting(args, "seconds"),
            workers,
        )
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"ranch-demo: {exc}") from None
    print(groups_headline(workload), file=out)
    runs = run_all_groups(workload)
    print(file=out)
    print(format_groups_report(workload, runs), file=out)
    _outputs(
        args,
        out,
        lambda path: write_groups_chart(path, workload, runs),
        lambda: {
            "scenario": "groups",
            "workload": attrs.asdict(workload),
            "runs": [run.to_dict(workload) for run in runs],
        },
    )
    return 1 if any(run.calls(tenant) == 0 for run in runs for tenant in workload.tenants) else 0


def _flood(args: argparse.Namespace, workers: int, out: Any) -> int:
    workload = workload_from_args(args)
    backend = load_backend(args.backend)
    if args.redis:
        check_redis_installed(args.backend)
    where = f"Redis at {args.redis}, {workers} worker process(es)" if args.redis else "in-process, no server"
    print(
        f"ranch-demo ({args.backend}, {where}): {workload.bulk_calls} calls for '{workload.bulk_key}', "
        f"then {workload.calls_per_key} each for {len(workload.interactive_keys)} interactive keys; "
        f"{workload.work_seconds * 1000:g} ms per call",
        file=out,
    )
    plain, fair = run_both(backend, workload, redis_url=args.redis, workers=workers)
    print(file=out)
    print(format_report(workload, plain, fair), file=out)
    _outputs(
        args,
        out,
        lambda path: write_chart(path, workload, plain, fair),
        lambda: {"workload": attrs.asdict(workload), "runs": [r.to_dict(workload) for r in (plain, fair)]},
    )
    problems = plain.check_complete(workload) + fair.check_complete(workload)
    return 1 if problems else 0


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    default_backend: str = "celery",
    prog: str = "ranch-demo",
    out: Any = None,
) -> int:
    """``ranch-demo``: run both modes, print the table; the chart and JSON where asked."""
    out = sys.stdout if out is None else out
    args = build_parser(prog, default_backend).parse_args(argv)
    workers = setting(args, "workers")
    if workers < 1:
        raise SystemExit("ranch-demo: --workers must be >= 1")
    if args.scenario == "limits":
        return _limits(args, workers, out)
    if args.scenario == "runtime":
        return _runtime(args, workers, out)
    if args.scenario == "groups":
        return _groups(args, workers, out)
    return _flood(args, workers, out)
