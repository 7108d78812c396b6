"""The demo every adapter runs: a flood, a few quiet keys, two runs, one report.

This package knows no task queue. Four scenarios: ``flood`` (plain FIFO vs
Ranch on a task queue), ``limits`` (without vs with per-key controls, on
ranch-core alone), ``runtime`` (plain vs fair by count vs fair by time,
on ranch-core alone) and ``groups`` (plain vs flat keys vs two-level keys,
on ranch-core alone). Read it in this order:

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
* the ``limits`` scenario, the same steps in its own modules:
  :mod:`~ranch_core.demo.limits_workload` (:class:`LimitsWorkload`: the calls
  and the controls), :mod:`~ranch_core.demo.limits_stats` (:class:`LimitsRun`:
  running at once, starts per second, waits), :mod:`~ranch_core.demo.limits_run`
  (:func:`run_limits`: worker threads on the in-memory storage),
  :mod:`~ranch_core.demo.limits_report` and :mod:`~ranch_core.demo.limits_chart`;
* the ``runtime`` scenario: :mod:`~ranch_core.demo.runtime_run`
  (:class:`RuntimeWorkload`, :func:`run_runtime`: worker threads, three
  modes) and :mod:`~ranch_core.demo.runtime_report` (the table and the chart);
* the ``groups`` scenario: :mod:`~ranch_core.demo.groups_run`
  (:class:`GroupsWorkload`, :func:`run_groups`: worker threads, three modes),
  :mod:`~ranch_core.demo.groups_report` (the table) and
  :mod:`~ranch_core.demo.groups_chart` (the picture);
* :mod:`~ranch_core.demo.cli`: the command line behind ``ranch-demo``.

Imports run one way, down this list; nothing here imports back.
"""

from ranch_core.demo.backend import DemoBackend, check_redis_installed, load_backend, run_both
from ranch_core.demo.chart import write_chart
from ranch_core.demo.cli import (
    NAMES,
    SCENARIOS,
    build_parser,
    limits_workload_from_args,
    main,
    workload_from_args,
)
from ranch_core.demo.execution import Execution, perform
from ranch_core.demo.groups_chart import write_groups_chart
from ranch_core.demo.groups_report import format_groups_report
from ranch_core.demo.groups_run import GROUPS_MODES, GroupsRun, GroupsWorkload, run_all_groups, run_groups
from ranch_core.demo.limits_chart import write_limits_chart
from ranch_core.demo.limits_report import format_limits_report
from ranch_core.demo.limits_run import run_free_and_limited, run_limits
from ranch_core.demo.limits_stats import LIMITS_MODES, LIMITS_TITLES, LimitsRun
from ranch_core.demo.limits_workload import LimitsWorkload
from ranch_core.demo.report import format_report
from ranch_core.demo.runtime_report import format_runtime_report, write_runtime_chart
from ranch_core.demo.runtime_run import RUNTIME_MODES, RuntimeRun, RuntimeWorkload, run_runtime
from ranch_core.demo.stats import MODE_TITLES, MODES, KeyStats, RunResult
from ranch_core.demo.workload import Submission, Submit, Workload, drive

__all__ = [
    "GROUPS_MODES",
    "LIMITS_MODES",
    "LIMITS_TITLES",
    "MODES",
    "MODE_TITLES",
    "NAMES",
    "RUNTIME_MODES",
    "SCENARIOS",
    "DemoBackend",
    "Execution",
    "GroupsRun",
    "GroupsWorkload",
    "KeyStats",
    "LimitsRun",
    "LimitsWorkload",
    "RunResult",
    "RuntimeRun",
    "RuntimeWorkload",
    "Submission",
    "Submit",
    "Workload",
    "build_parser",
    "check_redis_installed",
    "drive",
    "format_groups_report",
    "format_limits_report",
    "format_report",
    "format_runtime_report",
    "limits_workload_from_args",
    "load_backend",
    "main",
    "perform",
    "run_all_groups",
    "run_both",
    "run_free_and_limited",
    "run_groups",
    "run_limits",
    "run_runtime",
    "workload_from_args",
    "write_chart",
    "write_groups_chart",
    "write_limits_chart",
    "write_runtime_chart",
]
