"""The ``ranch-demo`` command line: :func:`main`.

It writes nothing but its report on stdout, unless asked: the chart only
with ``--chart PATH``, the numbers only with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

import attrs

from ranch_core.demo.backend import check_redis_installed, load_backend, run_both
from ranch_core.demo.chart import write_chart
from ranch_core.demo.report import format_report
from ranch_core.demo.workload import Workload

#: Names of the interactive keys, in order (``user<N>`` after these).
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def build_parser(prog: str, default_backend: str) -> argparse.ArgumentParser:
    """The options every ``ranch-demo`` understands."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the same flood twice, plain FIFO vs Ranch fair scheduling, and compare the waits.",
    )
    parser.add_argument("--backend", default=default_backend, help=f"task queue (default: {default_backend})")
    parser.add_argument("--redis", metavar="URL", help="run on this Redis with worker processes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes with --redis (default: 2)")
    parser.add_argument("--bulk", type=int, default=300, help="calls of the bulk key (default: 300)")
    parser.add_argument("--keys", type=int, default=5, help="number of interactive keys (default: 5)")
    parser.add_argument("--calls", type=int, default=3, help="calls per interactive key (default: 3)")
    parser.add_argument("--work-ms", type=float, default=5.0, help="work per call in ms (default: 5)")
    parser.add_argument("--chart", metavar="PATH", help="draw the two runs to this PNG (matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON here")
    return parser


def workload_from_args(args: argparse.Namespace) -> Workload:
    """The :class:`Workload` the command-line options describe."""
    if args.keys < 1:
        raise SystemExit("ranch-demo: --keys must be >= 1")
    keys = [NAMES[i] if i < len(NAMES) else f"user{i}" for i in range(args.keys)]
    try:
        return Workload(
            bulk_calls=args.bulk,
            interactive_keys=tuple(keys),
            calls_per_key=args.calls,
            work_seconds=args.work_ms / 1000.0,
        )
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"ranch-demo: {exc}") from None


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
    if args.workers < 1:
        raise SystemExit("ranch-demo: --workers must be >= 1")
    workload = workload_from_args(args)
    backend = load_backend(args.backend)
    if args.redis:
        check_redis_installed(args.backend)
    where = (
        f"Redis at {args.redis}, {args.workers} worker process(es)" if args.redis else "in-process, no server"
    )
    print(
        f"ranch-demo ({args.backend}, {where}): {workload.bulk_calls} calls for '{workload.bulk_key}', "
        f"then {workload.calls_per_key} each for {len(workload.interactive_keys)} interactive keys; "
        f"{args.work_ms:g} ms per call",
        file=out,
    )
    plain, fair = run_both(backend, workload, redis_url=args.redis, workers=args.workers)
    print(file=out)
    print(format_report(workload, plain, fair), file=out)
    if args.chart:
        if write_chart(args.chart, workload, plain, fair):
            print(f"chart written to {args.chart}", file=out)
        else:
            print("chart skipped: matplotlib is not installed (pip install matplotlib)", file=out)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"workload": attrs.asdict(workload), "runs": [r.to_dict(workload) for r in (plain, fair)]},
                handle,
                indent=2,
            )
        print(f"numbers written to {args.json}", file=out)
    problems = plain.check_complete(workload) + fair.check_complete(workload)
    return 1 if problems else 0
