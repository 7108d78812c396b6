"""Running the ``ranch`` console script in tests: one-shot commands and long-running servers."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

#: The console script installed beside this interpreter.
RANCH = os.path.join(os.path.dirname(sys.executable), "ranch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Server:
    """``ranch metrics`` or ``ranch dashboard`` in a process of its own, stopped with SIGTERM."""

    def __init__(self, url: str, command: str, *args: str, env: Optional[Dict[str, str]] = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [RANCH, command, "--port", str(self.port), *args],
            env={**os.environ, "RANCH_REDIS_URL": url, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited: {self.proc.communicate()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)  # a process starting: nothing to await but its port
        raise AssertionError("exporter did not listen within 15 s")

    def get(self, path: str = "/metrics", token: Optional[str] = None) -> Tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=15)
        return int(self.proc.returncode)


def run(url: Optional[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ranch *args`` to its end with ``RANCH_REDIS_URL`` set to ``url`` (unset for ``None``)."""
    env = {k: v for k, v in os.environ.items() if k != "RANCH_REDIS_URL"}
    if url is not None:
        env["RANCH_REDIS_URL"] = url
    return subprocess.run([RANCH, *args], env=env, capture_output=True, text=True, timeout=60)


def run_here(url: Optional[str], *args: str) -> subprocess.CompletedProcess[str]:
    """What :func:`run` returns, from ``ranch_redis.cli.main.main`` called in this process
    (a process of its own costs 0.25 s of start-up, more under coverage): ``RANCH_REDIS_URL``
    set to ``url`` (unset for ``None``), stdout and stderr captured, the exit code returned."""
    from ranch_redis.cli.main import main

    saved_url = os.environ.pop("RANCH_REDIS_URL", None)
    if url is not None:
        os.environ["RANCH_REDIS_URL"] = url
    root = logging.getLogger()
    saved_logging = (list(root.handlers), root.level)  # main() may configure the root logger
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse, on a usage error
                code = exit.code if isinstance(exit.code, int) else 1
    finally:
        root.handlers[:], root.level = saved_logging
        os.environ.pop("RANCH_REDIS_URL", None)
        if saved_url is not None:
            os.environ["RANCH_REDIS_URL"] = saved_url
    return subprocess.CompletedProcess(["ranch", *args], code, out.getvalue(), err.getvalue())


__all__: List[str] = ["RANCH", "Server", "free_port", "run", "run_here"]
