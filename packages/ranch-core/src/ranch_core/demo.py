"""The demo every adapter runs: a flood, a few interactive keys, two runs, one report.

This module knows no task queue. It holds

* the workload (:class:`Workload`): one *bulk* key floods the queue, then a
  few *interactive* keys send a handful of calls each;
* what one call does and records (:func:`perform` returns an
  :class:`Execution`: key, index, submitted/started/finished times);
* the producer loop (:func:`drive`), the same for every backend and mode;
* the per-run result (:class:`RunResult`) and the report: a side-by-side
  table (:func:`format_report`) and an optional matplotlib chart
  (:func:`write_chart`);
* the command line (:func:`main`) behind ``ranch-demo``.

A backend (``ranch_celery.demo``, ``ranch_dramatiq.demo``, or your own) is a
module with one function, see :class:`DemoBackend`::

    def run(workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult

``mode`` is ``"plain"`` (the queue's own FIFO: ``.delay``/``.send``) or
``"fair"`` (Ranch: ``lru_delay``/``lru_send``). ``redis_url`` ``None`` means
"no server": an in-process broker, worker and in-memory storage. The backend
starts its workers, calls :func:`drive` with a ``submit`` callable that sends
one demo call (whose worker side calls :func:`perform` and keeps the
:class:`Execution` somewhere the backend can collect it), waits until every
call ran, and returns ``RunResult(mode=mode, executions=..., elapsed=...)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from bisect import bisect_left
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import attrs

#: The two ways a demo run sends its calls.
MODES = ("plain", "fair")
MODE_TITLES = {"plain": "plain FIFO", "fair": "Ranch fair"}


def _check_positive_int(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    return check


def _check_seconds(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    return check


def _to_keys(value: Sequence[str]) -> Tuple[str, ...]:
    return tuple(value)


def _check_keys(_instance: Any, _attribute: Any, value: Any) -> None:
    if not value or not all(isinstance(key, str) and key for key in value):
        raise ValueError("interactive_keys must be a non-empty sequence of non-empty strings")
    if len(set(value)) != len(value):
        raise ValueError("interactive_keys must be distinct")


@attrs.frozen
class Submission:
    """One call the producer sends: its key, its global index, when it was sent."""

    key: str
    index: int
    submitted_at: float


@attrs.frozen
class Workload:
    """The flood: ``bulk_calls`` for ``bulk_key``, then ``calls_per_key`` for each interactive key.

    The interactive calls are sent ``interactive_delay`` seconds after the
    last bulk call, round robin over the keys, while the workers are busy
    with the flood. Each call sleeps ``work_seconds`` on the worker.
    """

    bulk_calls: int = attrs.field(default=300, validator=_check_positive_int("bulk_calls"))
    interactive_keys: Tuple[str, ...] = attrs.field(
        default=("alice", "bob", "carol", "dave", "erin"), converter=_to_keys, validator=_check_keys
    )
    calls_per_key: int = attrs.field(default=3, validator=_check_positive_int("calls_per_key"))
    work_seconds: float = attrs.field(default=0.005, validator=_check_seconds("work_seconds"))
    interactive_delay: float = attrs.field(default=0.05, validator=_check_seconds("interactive_delay"))
    bulk_key: str = "bulk"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.bulk_key, str) or not self.bulk_key:
            raise ValueError("bulk_key must be a non-empty string")
        if self.bulk_key in self.interactive_keys:
            raise ValueError("bulk_key must not also be an interactive key")

    @property
    def keys(self) -> List[str]:
        """The bulk key first, then the interactive keys."""
        return [self.bulk_key, *self.interactive_keys]

    @property
    def total(self) -> int:
        """Number of calls one run sends."""
        return self.bulk_calls + len(self.interactive_keys) * self.calls_per_key

    def plan(self) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
        """``(bulk, interactive)``: the ``(key, index)`` pairs in sending order."""
        bulk = [(self.bulk_key, index) for index in range(self.bulk_calls)]
        interactive = []
        index = self.bulk_calls
        for _ in range(self.calls_per_key):
            for key in self.interactive_keys:
                interactive.append((key, index))
                index += 1
        return bulk, interactive


Submit = Callable[[Submission], None]


def drive(workload: Workload, submit: Submit, clock: Callable[[], float] = time.time) -> List[Submission]:
    """Send the workload through ``submit`` in its order; return what was sent.

    ``submitted_at`` is taken just before each ``submit`` call, on ``clock``
    (wall-clock seconds, comparable across the worker processes of one host).
    """
    bulk, interactive = workload.plan()
    sent: List[Submission] = []
    for key, index in bulk:
        submission = Submission(key, index, clock())
        submit(submission)
        sent.append(submission)
    time.sleep(workload.interactive_delay)
    for key, index in interactive:
        submission = Submission(key, index, clock())
        submit(submission)
        sent.append(submission)
    return sent


@attrs.frozen
class Execution:
    """One demo call as its worker ran it."""

    key: str
    index: int
    submitted_at: float
    started_at: float
    finished_at: float
    worker: str = ""

    def to_json(self) -> str:
        """One line of JSON (backends with worker processes ship records this way)."""
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> Execution:
        """Inverse of :meth:`to_json` (``str`` or ``bytes``)."""
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("an execution record must be a JSON object")
        return cls(**fields)


def perform(
    key: str,
    index: int,
    submitted_at: float,
    work_seconds: float,
    *,
    worker: str = "",
    clock: Callable[[], float] = time.time,
) -> Execution:
    """The body of the demo task: note the start, work (sleep), note the end."""
    started = clock()
    if work_seconds > 0:
        time.sleep(work_seconds)
    return Execution(key, index, submitted_at, started, clock(), worker or f"pid{os.getpid()}")


@attrs.frozen
class KeyStats:
    """Waits of one key's calls in one run.

    A call's wait *in executions* is the number of calls that started after
    it was sent and before it started: how many others jumped ahead of it.
    """

    key: str
    tasks: int
    median_exec: float
    worst_exec: int
    median_ms: float
    worst_ms: float


def _to_executions(value: Sequence[Execution]) -> Tuple[Execution, ...]:
    return tuple(value)


@attrs.frozen
class RunResult:
    """Everything one run recorded. ``elapsed`` is seconds from first send to last finish."""

    mode: str
    executions: Tuple[Execution, ...] = attrs.field(converter=_to_executions)
    elapsed: float = 0.0
    backend: str = ""
    workers: int = 1

    def __attrs_post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def ordered(self) -> List[Execution]:
        """Executions in the order they started."""
        return sorted(self.executions, key=lambda e: (e.started_at, e.index))

    def check_complete(self, workload: Workload) -> List[str]:
        """Problems found: calls that never ran or ran more than once (empty: all good)."""
        counts: Dict[int, int] = {}
        for execution in self.executions:
            counts[execution.index] = counts.get(execution.index, 0) + 1
        problems = [f"call {i} ran {n} times" for i, n in sorted(counts.items()) if n > 1]
        missing = [i for i in range(workload.total) if i not in counts]
        if missing:
            problems.append(f"{len(missing)} calls never ran (first: {missing[:5]})")
        return problems

    def waits(self) -> Dict[int, Tuple[int, float]]:
        """``index -> (wait in executions, wait in ms)`` for every call that ran."""
        ordered = self.ordered()
        starts = [e.started_at for e in ordered]
        result: Dict[int, Tuple[int, float]] = {}
        for position, execution in enumerate(ordered):
            before_sent = bisect_left(starts, execution.submitted_at)
            jumped = max(0, position - before_sent)
            result[execution.index] = (jumped, max(0.0, execution.started_at - execution.submitted_at) * 1000)
        return result

    def stats(self, key: str) -> KeyStats:
        """The waits of ``key``'s calls."""
        waits = self.waits()
        mine = [waits[e.index] for e in self.executions if e.key == key]
        if not mine:
            return KeyStats(key, 0, math.nan, 0, math.nan, math.nan)
        execs = [w[0] for w in mine]
        millis = [w[1] for w in mine]
        return KeyStats(
            key, len(mine), statistics.median(execs), max(execs), statistics.median(millis), max(millis)
        )

    def to_dict(self, workload: Workload) -> Dict[str, Any]:
        """JSON-ready summary: per-key stats and run totals."""
        return {
            "mode": self.mode,
            "backend": self.backend,
            "workers": self.workers,
            "elapsed_s": self.elapsed,
            "executions": len(self.executions),
            "keys": {key: attrs.asdict(self.stats(key)) for key in workload.keys},
        }


class DemoBackend(Protocol):
    """What ``ranch_<backend>.demo`` provides (a module satisfies this protocol)."""

    def run(self, workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult:
        """Run ``workload`` once in ``mode`` and return what was recorded."""


# -- report ------------------------------------------------------------------


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


def write_chart(path: str, workload: Workload, plain: RunResult, fair: RunResult) -> bool:
    """Draw the two runs to a PNG at ``path``; ``False`` if matplotlib is not installed.

    Left: when each call ran (execution order) per key, plain above fair.
    Right: each interactive key's worst wait in milliseconds, plain vs fair.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    keys = workload.keys
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.5), gridspec_kw={"width_ratios": [2.2, 1]})
    for row, run in enumerate((plain, fair)):
        ax = axes[row][0]
        ordered = run.ordered()
        for key_no, key in enumerate(keys):
            xs = [pos for pos, e in enumerate(ordered) if e.key == key]
            color = "#b0b0b0" if key == workload.bulk_key else f"C{key_no % 10}"
            ax.scatter(xs, [key_no] * len(xs), s=8 if key == workload.bulk_key else 28, color=color)
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels(keys)
        ax.invert_yaxis()
        ax.set_xlim(-2, max(1, len(ordered)) + 2)
        ax.set_title(f"{MODE_TITLES[run.mode]}: execution order of every call")
        ax.set_xlabel("execution number")
    bar_ax = axes[0][1]
    interactive = list(workload.interactive_keys)
    xs = list(range(len(interactive)))
    plain_ms = [plain.stats(k).worst_ms for k in interactive]
    fair_ms = [fair.stats(k).worst_ms for k in interactive]
    bar_ax.bar([x - 0.2 for x in xs], plain_ms, width=0.4, label=MODE_TITLES["plain"], color="#d62728")
    bar_ax.bar([x + 0.2 for x in xs], fair_ms, width=0.4, label=MODE_TITLES["fair"], color="#2ca02c")
    bar_ax.set_xticks(xs)
    bar_ax.set_xticklabels(interactive, rotation=30)
    bar_ax.set_ylabel("worst wait (ms)")
    bar_ax.set_title("interactive keys: worst wait")
    tallest = max([v for v in plain_ms + fair_ms if not math.isnan(v)] or [1.0])
    bar_ax.set_ylim(0, tallest * 1.3)  # room for the legend above the bars
    bar_ax.legend(loc="upper center", ncol=2)
    text_ax = axes[1][1]
    text_ax.axis("off")
    text_ax.text(
        0.0,
        0.95,
        f"{workload.bulk_calls} calls of '{workload.bulk_key}', then\n"
        f"{workload.calls_per_key} calls each for {len(interactive)} interactive keys\n"
        f"{workload.work_seconds * 1000:.0f} ms of work per call\n\n"
        f"worst interactive wait (executions):\n"
        f"  plain {max(plain.stats(k).worst_exec for k in interactive)}"
        f"   fair {max(fair.stats(k).worst_exec for k in interactive)}",
        va="top",
        family="monospace",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# -- command line ------------------------------------------------------------


def load_backend(name: str) -> DemoBackend:
    """Import ``ranch_<name>.demo``; a clear ``SystemExit`` if it is not installed."""
    if not name.isidentifier():
        raise SystemExit(f"ranch-demo: bad backend name {name!r}")
    module_name = f"ranch_{name}.demo"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise SystemExit(
                f"ranch-demo: backend {name!r} needs the package ranch-{name} (pip install ranch-{name})"
            ) from None
        raise
    if not callable(getattr(module, "run", None)):
        raise SystemExit(f"ranch-demo: {module_name} has no run() function")
    backend: DemoBackend = module
    return backend


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
    parser.add_argument(
        "--chart",
        metavar="PATH",
        default=os.path.join(tempfile.gettempdir(), "ranch-demo.png"),
        help="where to write the PNG chart (needs matplotlib; default: %(default)s)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON here")
    return parser


NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


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


def run_both(
    backend: DemoBackend, workload: Workload, *, redis_url: Optional[str], workers: int
) -> Tuple[RunResult, RunResult]:
    """Run ``plain`` then ``fair`` on the same backend and settings."""
    plain = backend.run(workload, "plain", redis_url=redis_url, workers=workers)
    fair = backend.run(workload, "fair", redis_url=redis_url, workers=workers)
    return plain, fair


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    default_backend: str = "celery",
    prog: str = "ranch-demo",
    out: Any = None,
) -> int:
    """``ranch-demo``: run both modes, print the table, write the chart (and JSON)."""
    out = sys.stdout if out is None else out
    args = build_parser(prog, default_backend).parse_args(argv)
    if args.workers < 1:
        raise SystemExit("ranch-demo: --workers must be >= 1")
    workload = workload_from_args(args)
    backend = load_backend(args.backend)
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
    if not args.no_chart:
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
