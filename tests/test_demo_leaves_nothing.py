"""``ranch-demo`` leaves nothing behind: no Redis key, no file, no chart unless asked.

Runs the real command line in a subprocess, on a real ``redis-server``
(``ranch_redis.testing.RedisServer``) with real worker processes, from an
empty working folder and with ``TMPDIR`` pointing at another empty folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import metadata, version
from pathlib import Path
from typing import Iterator, List

import pytest
import redis
from ranch_redis.testing import RedisServer

SMALL = ["--bulk", "60", "--keys", "2", "--calls", "2", "--work-ms", "2", "--workers", "2"]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


def _left_in(folder: Path) -> List[Path]:
    """What is left in ``folder``, less the one folder Dramatiq 1.x makes on import.

    ``import dramatiq`` (< 2.0) creates ``$TMPDIR/dramatiq-prometheus`` for its
    Prometheus middleware, whoever imports it; the demo does not use that
    middleware, so the folder stays empty.
    """
    left = list(folder.iterdir())
    if int(version("dramatiq").split(".")[0]) < 2:
        left = [p for p in left if not (p.name == "dramatiq-prometheus" and not any(p.iterdir()))]
    return left


def _run(args: List[str], cwd: Path, tmp: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{prelude}\nfrom ranch_celery.demo import main\nsys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["celery", "dramatiq"])
def test_demo_on_redis_deletes_its_keys_and_files(server: RedisServer, tmp_path: Path, backend: str) -> None:
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.set("users:own:key", "kept")  # the user's data stays
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    done = _run(["--backend", backend, "--redis", server.url, *SMALL], work, tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("every call ran exactly once") == 2, done.stdout
    assert client.keys("ranch:*") == []
    assert client.keys("*") == [b"users:own:key"]
    assert _left_in(work) == [] and _left_in(tmp) == []
    client.close()


def test_demo_in_process_writes_the_chart_only_where_asked(tmp_path: Path) -> None:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    args = ["--bulk", "30", "--keys", "2", "--calls", "1", "--work-ms", "1"]
    done = _run(args, work, tmp)
    assert done.returncode == 0, done.stderr
    assert _left_in(work) == [] and _left_in(tmp) == []
    chart = tmp_path / "asked.png"
    done = _run([*args, "--chart", str(chart)], work, tmp)
    assert done.returncode == 0, done.stderr
    assert f"chart written to {chart}" in done.stdout
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert _left_in(work) == [] and _left_in(tmp) == []


@pytest.mark.parametrize(
    ("backend", "distribution"), [("celery", "ranch-celery"), ("dramatiq", "ranch-dramatiq")]
)
def test_redis_option_without_ranch_redis_names_the_extra(
    tmp_path: Path, backend: str, distribution: str
) -> None:
    # ``sys.modules[name] = None`` is how Python spells "this module cannot be imported".
    done = _run(
        ["--backend", backend, "--redis", "redis://127.0.0.1:1/0"],
        tmp_path,
        tmp_path,
        prelude="sys.modules['ranch_redis'] = None",
    )
    assert done.returncode == 1
    message = done.stderr.strip()
    assert message == (
        f'ranch-demo: --redis needs ranch-redis, not installed here: pip install "{distribution}[redis]"'
    )
    assert "redis" in (metadata(distribution).get_all("Provides-Extra") or [])


def test_limits_scenario_writes_the_chart_only_where_asked(tmp_path: Path) -> None:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    chart = tmp_path / "limits.png"
    done = _run(["--scenario", "limits", "--bulk", "200", "--chart", str(chart)], work, tmp)
    assert done.returncode == 0, done.stderr
    assert "every call ran exactly once, every control held" in done.stdout
    assert f"chart written to {chart}" in done.stdout
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert _left_in(work) == [] and _left_in(tmp) == []
