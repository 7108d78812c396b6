"""The demo every adapter runs: a flood, a few quiet keys, two runs, one report.

This package knows no task queue. Read it in this order:

* :mod:`~ranch_core.demo.workload`: what a run sends (:class:`Workload`,
  :class:`Submission`) and the producer loop (:func:`drive`);
* :mod:`~ranch_core.demo.execution`: what one call does and records
  (:func:`perform` returns an :class:`Execution`);
* :mod:`~ranch_core.demo.stats`: what a run recorded (:class:`RunResult`) and
  the waits it shows (:class:`KeyStats`);
* :mod:`~ranch_core.demo.backend`: how a task queue plugs in
  (:class:`DemoBackend`, :func:`load_backend`, :func:`run_both`);
* :mod:`~ranch_core.demo.report` and :mod:`~ranch_core.demo.chart`: the
  side-by-side table and the optional matplotlib picture;
* :mod:`~ranch_core.demo.cli`: the command line behind ``ranch-demo``.

Imports run one way, down this list; nothing here imports back.
"""

from ranch_core.demo.backend import DemoBackend, check_redis_installed, load_backend, run_both
from ranch_core.demo.chart import write_chart
from ranch_core.demo.cli import NAMES, build_parser, main, workload_from_args
from ranch_core.demo.execution import Execution, perform
from ranch_core.demo.report import format_report
from ranch_core.demo.stats import MODE_TITLES, MODES, KeyStats, RunResult
from ranch_core.demo.workload import Submission, Submit, Workload, drive

__all__ = [
    "MODES",
    "MODE_TITLES",
    "NAMES",
    "DemoBackend",
    "Execution",
    "KeyStats",
    "RunResult",
    "Submission",
    "Submit",
    "Workload",
    "build_parser",
    "check_redis_installed",
    "drive",
    "format_report",
    "load_backend",
    "main",
    "perform",
    "run_both",
    "workload_from_args",
    "write_chart",
]
