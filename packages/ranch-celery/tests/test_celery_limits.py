"""ranch_celery.limits in this process: the soft limit's SIGALRM and the hard limit's watchdog.

The real-worker tests (test_celery_options.py) run them in prefork children,
where coverage cannot follow a child the hard limit kills; here the main
thread of the test process plays the pool process.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Iterator, List

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from ranch_celery import limits


@pytest.fixture
def pool_process() -> Iterator[None]:
    saved = limits._pool_process["prefork"]
    limits._pool_process["prefork"] = True
    yield
    limits._pool_process["prefork"] = saved


def test_limits_apply_only_in_a_prefork_pool_process() -> None:
    assert not limits.enforceable()  # the test process is no pool child
    assert limits.call_limits([5, 2.5]) == (5.0, 2.5)
    assert limits.call_limits([None, 0]) == (None, None)
    assert limits.call_limits("5") == (None, None)
    assert limits.call_limits([True, -1]) == (None, None)


def test_the_soft_limit_raises_in_the_call_and_the_hard_limit_is_disarmed(pool_process: None) -> None:
    soft: List[float] = []
    hard: List[float] = []
    before = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded), limits.enforced([30, 0.2], soft.append, hard.append):
        time.sleep(10)
    assert soft == [0.2] and hard == []
    assert time.monotonic() - started < 9  # interrupted, not slept out
    assert signal.getsignal(signal.SIGALRM) in (before, signal.SIG_DFL)  # handed back


def test_a_call_within_its_limits_runs_to_the_end(pool_process: None) -> None:
    soft: List[float] = []
    hard: List[float] = []
    with limits.enforced([30, 20], soft.append, hard.append):
        value = "done"
    assert value == "done" and soft == [] and hard == []


def test_the_hard_limit_stores_its_failure_then_kills_the_process() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the watchdog must report, then SIGKILL it
        os.close(read)
        watchdog = limits.HardLimit(0.1, lambda seconds: os.write(write, f"{seconds}".encode()))
        watchdog.start()
        time.sleep(10)
        os._exit(3)  # only if the watchdog did not fire
    os.close(write)
    _, status = os.waitpid(pid, 0)
    reported = os.read(read, 100)
    os.close(read)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert reported == b"0.1"
