"""Sessions: tests (every CPython 3.9-3.13 found), tests_min, lint, typecheck, deep, mutation, bench, demo.

    nox -s tests lint typecheck     # what CI runs; on 3.11 the suite runs under coverage, with gates
    nox -s tests_min                # the suite on the lowest supported celery, dramatiq, redis-py
    nox -s deep                     # the property and conformance tests, 500 random examples each
    nox -s mutation                 # mutmut over the core's algorithm, storage, scheduler, validation
    nox -s demo                     # the flood-vs-fair demo, no server needed
    nox -s bench                    # benchmarks (needs redis-server on PATH)

Interpreters under pyenv are found when PYENV_VERSION lists them, e.g.
``PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 nox -s tests``. A missing
interpreter is skipped, except 3.11 under CI, which must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

ALL_PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
REQUIRED_IN_CI = "3.11"
CI = bool(os.environ.get("CI"))

PACKAGES = [
    "-e", "packages/ranch-core[testing,chart]",
    "-e", "packages/ranch-redis[metrics]",
    "-e", "packages/ranch-celery[redis]",
    "-e", "packages/ranch-dramatiq[redis]",
]  # fmt: skip
#: gevent: the Celery per-call time limit test on the gevent pool (this version has wheels for 3.9-3.13);
#: selenium: the dashboard tests in headless Chromium.
#: pytest-xdist: the suite runs in PARALLEL processes.
TEST_TOOLS = [
    "pytest>=7", "pytest-timeout", "pytest-xdist>=3.5", "hypothesis>=6.80",
    "gevent==24.11.1", "selenium>=4.11",
]  # fmt: skip
#: The whole suite in four pytest-xdist processes on the 2-core VM, each test module in one of
#: them (a module's servers and workers stay together): many tests wait on real servers and
#: workers (measured in session 8: 3 min 22 s with four, 4 min 17 s with three, 3 min 28 s
#: with five; README, "Testing").
PARALLEL = ["-n", "4", "--dist", "loadfile"]
#: The interpreter whose run is measured: coverage of worker subprocesses needs coverage's "patch".
COVERAGE_PYTHON = "3.11"
COVERAGE = "coverage>=7.10"
#: The Hypothesis property and conformance tests (``nox -s deep``).
PROPERTY_TESTS = [
    "packages/ranch-core/tests/test_core_memory_conformance.py",
    "packages/ranch-redis/tests/test_redis_conformance.py",
    "packages/ranch-redis/tests/test_redis_differential.py",
    "packages/ranch-redis/tests/test_redis_keys.py",
]
#: The lowest versions the packages' pyproject.toml files accept; tests_min runs the suite on them.
#: celery 5.5.0 needs kombu >= 5.5.2. Floors raised after runs of this session: celery 5.3/5.4
#: (the in-process worker passes hostname= to start_worker, accepted from 5.5), dramatiq 1.17
#: (two ranch-dramatiq tests), redis-py 4.5 (5.0 is what ranch-redis documents; its Redis-down
#: fault test failed 1 run in 3 on 4.5.2, but also fails under load on 8.1).
LOWEST = ["celery[redis]==5.5.0", "kombu==5.5.2", "dramatiq[redis]==1.18.0", "redis==5.0.0", "attrs==22.2.0"]


def _runs(version: str) -> bool:
    """Whether ``pythonX.Y`` starts (a pyenv shim exists even for hidden versions)."""
    try:
        probe = subprocess.run([f"python{version}", "-c", "pass"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


PYTHONS = [v for v in ALL_PYTHONS if _runs(v) or (CI and v == REQUIRED_IN_CI)]

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True  # only found interpreters are listed
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite: core properties, real redis-server, real Celery and Dramatiq workers."""
    session.install(*PACKAGES, *TEST_TOOLS)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    if session.python != COVERAGE_PYTHON:
        session.run("pytest", *PARALLEL, "--durations=10")  # the 15 s rule, in the log
        return
    # The whole suite under coverage (settings: [tool.coverage] in pyproject.toml), worker
    # subprocesses included, then the gates of scripts/coverage_gates.py.
    session.install(COVERAGE)
    session.run("coverage", "erase")
    # The xdist processes are measured like any Python subprocess (coverage's "patch"). The
    # "coverage" Hypothesis profile (conftest.py): half the examples, as tracing doubles their cost.
    session.run(
        "coverage", "run", "-m", "pytest", *PARALLEL, "--durations=25",  # the 15 s rule, in the log
        env={"RANCH_HYPOTHESIS_PROFILE": os.environ.get("RANCH_HYPOTHESIS_PROFILE", "coverage")},
    )  # fmt: skip
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "json", "--quiet", "-o", "coverage.json")
    session.run("python", "scripts/coverage_gates.py", "coverage.json")


@nox.session(python="3.11")
def deep(session: nox.Session) -> None:
    """The property and conformance tests with the ``deep`` Hypothesis profile: 500 random examples."""
    session.install(*PACKAGES, *TEST_TOOLS)
    session.run("pytest", *PROPERTY_TESTS, *session.posargs, env={"RANCH_HYPOTHESIS_PROFILE": "deep"})


@nox.session(python="3.11")
def mutation(session: nox.Session) -> None:
    """mutmut over ranch_core's algorithm, in-memory storage, scheduler and validation; core tests only.

    Configuration: packages/ranch-core/setup.cfg. Fails under a raw score of 90 %; the surviving
    mutants and why each is equivalent: packages/ranch-core/MUTANTS.md.
    """
    session.install(*PACKAGES, *TEST_TOOLS, "mutmut==3.8.1")
    core = "packages/ranch-core"
    shutil.rmtree(f"{core}/mutants", ignore_errors=True)  # a fresh run: no cached results
    with session.chdir(core):
        # The "mutation" profile: 20 examples, without shrinking (a mutant only has to fail).
        session.run(
            "mutmut", "run", "--max-children", str(os.cpu_count() or 2),
            env={"RANCH_HYPOTHESIS_PROFILE": "mutation"},
        )  # fmt: skip
        session.run("mutmut", "export-cicd-stats")
    session.run("python", "scripts/mutation_score.py", core, "--equivalents", f"{core}/MUTANTS.md")


@nox.session(python="3.11")
def tests_min(session: nox.Session) -> None:
    """The whole suite against the lowest supported celery, kombu, dramatiq, redis-py and attrs."""
    session.install(*PACKAGES, *TEST_TOOLS, *LOWEST)
    session.run("python", "-m", "pip", "list", "--format=freeze")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package's src/, then on user code as users write it (examples/typed)."""
    session.install(*PACKAGES, "mypy==2.4.1")
    session.run("mypy")
    session.run("mypy", "--config-file", "examples/typed/mypy.ini", "examples/typed")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks: tables on stdout, JSON under benchmarks/results/. ``-- --quick`` for a short run."""
    session.install(*PACKAGES)
    for script in (
        "core_bench.py",
        "runtime_share.py",
        "fairness_groups.py",
        "redis_bench.py",
        "celery_bench.py",
        "dramatiq_bench.py",
    ):
        session.run("python", f"benchmarks/{script}", *session.posargs)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The main job: a flood next to quiet tenants, plain Celery vs Ranch."""
    session.install(*PACKAGES)
    session.run("ranch-demo", *session.posargs)
