"""Start ``celery worker`` processes by forking a process that has imported Celery and Ranch.

``python -m celery worker`` spends most of its start-up CPU importing Celery,
kombu, redis and Ranch; the suite starts about 80 workers. This server
(``python ranch_celery_forkserver.py``, one per test session) imports them
once; for each request (a JSON line on stdin: ``argv``, ``env``, ``log``) it
forks a child that runs Celery's own command line main (what
``python -m celery`` runs) in a new session, with that environment and its
output in ``log``, and answers the child's pid. The test app modules read
the environment when imported, so they are imported by each child only.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import signal
import sys
import threading
import traceback
from typing import Any, Dict, List

PRELOAD = (
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.worker.worker",
    "celery.worker.consumer",
    "celery.worker.components",
    "celery.worker.strategy",
    "celery.app.control",
    "celery.app.events",
    "celery.app.log",
    "celery.events.receiver",
    "celery.fixups.django",
    "kombu.matcher",
    "kombu.mixins",
    "kombu.pidbox",
    "billiard.popen_fork",
    "billiard.sharedctypes",
    "encodings.idna",
    "celery.concurrency.solo",
    "celery.concurrency.prefork",
    "celery.concurrency.thread",
    "celery.backends.redis",
    "kombu.transport.redis",
    "redis",
    "ranch_core",
    "ranch_redis",
    "ranch_celery",
)


def run_worker(request: Dict[str, Any]) -> None:
    """In the forked child: become ``python -m celery <argv>``; never returns."""
    code: Any = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["env"])
        argv: List[str] = request["argv"]
        sys.argv = ["celery", *argv]
        runpy.run_module("celery", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        # The interpreter's exit, but for the modules' teardown (a tenth of a second of CPU).
        try:
            threading._shutdown()  # type: ignore[attr-defined]
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def reap(*_args: Any) -> None:
    # Waited for (not ignored): their CPU time is counted in this process's children's.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def main() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, reap)
    replies = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        replies.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_worker(request)
        replies.write(f"{pid}\n".encode())
        replies.flush()


if __name__ == "__main__":
    main()
