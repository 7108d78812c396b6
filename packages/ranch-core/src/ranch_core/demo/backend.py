"""How the demo reaches a task queue: the :class:`DemoBackend` protocol and :func:`load_backend`.

A backend (``ranch_celery.demo``, ``ranch_dramatiq.demo``, or your own) is a
module with one function::

    def run(workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult

``mode`` is ``"plain"`` (the queue's own FIFO: ``.delay``/``.send``) or
``"fair"`` (Ranch: ``lru_delay``/``lru_send``). ``redis_url`` ``None`` means
"no server": an in-process broker, worker and in-memory storage. The backend
starts its workers, calls :func:`~ranch_core.demo.workload.drive` with a
``submit`` callable that sends one demo call (whose worker side calls
:func:`~ranch_core.demo.execution.perform` and keeps the
:class:`~ranch_core.demo.execution.Execution` where the backend can collect
it), waits until every call ran, and returns ``RunResult(mode, executions,
elapsed=...)``. A backend that used a Redis deletes every key it created
before it returns.
"""

from __future__ import annotations

import importlib
from typing import Dict, Optional, Protocol, Tuple

from ranch_core.demo.stats import RunResult
from ranch_core.demo.workload import Workload

#: The backends Ranch ships: backend name -> the distribution that holds it.
SHIPPED_BACKENDS: Dict[str, str] = {"celery": "ranch-celery", "dramatiq": "ranch-dramatiq"}


class DemoBackend(Protocol):
    """What ``ranch_<backend>.demo`` provides (a module satisfies this protocol)."""

    def run(self, workload: Workload, mode: str, *, redis_url: Optional[str], workers: int) -> RunResult:
        """Run ``workload`` once in ``mode`` and return what was recorded."""


def load_backend(name: str) -> DemoBackend:
    """Import ``ranch_<name>.demo``; a clear ``SystemExit`` if it is not installed."""
    if not name.isidentifier():
        raise SystemExit(f"ranch-demo: bad backend name {name!r}")
    module_name = f"ranch_{name}.demo"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            if name in SHIPPED_BACKENDS:
                hint = f"install it: pip install {SHIPPED_BACKENDS[name]}"
            else:
                hint = f"backends shipped with Ranch: {', '.join(sorted(SHIPPED_BACKENDS))}"
            raise SystemExit(
                f"ranch-demo: backend {name!r} not found (no module {module_name}); {hint}"
            ) from None
        raise
    if not callable(getattr(module, "run", None)):
        raise SystemExit(f"ranch-demo: {module_name} has no run() function")
    backend: DemoBackend = module
    return backend


def redis_install_hint(name: str) -> str:
    """The ``pip install`` that brings ranch-redis and redis-py next to backend ``name``."""
    if name in SHIPPED_BACKENDS:
        return f'pip install "{SHIPPED_BACKENDS[name]}[redis]"'
    return "pip install ranch-redis"


def check_redis_installed(name: str) -> None:
    """``SystemExit`` with one line naming the extra to install if ``--redis`` cannot work."""
    missing = []
    for module, distribution in (("redis", "redis-py"), ("ranch_redis", "ranch-redis")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise SystemExit(
            f"ranch-demo: --redis needs {' and '.join(missing)}, not installed here: "
            f"{redis_install_hint(name)}"
        )


def run_both(
    backend: DemoBackend, workload: Workload, *, redis_url: Optional[str], workers: int
) -> Tuple[RunResult, RunResult]:
    """Run ``plain`` then ``fair`` on the same backend and settings."""
    plain = backend.run(workload, "plain", redis_url=redis_url, workers=workers)
    fair = backend.run(workload, "fair", redis_url=redis_url, workers=workers)
    return plain, fair
