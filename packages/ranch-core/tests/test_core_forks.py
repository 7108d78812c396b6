"""ProcessLock: free in a forked child even if another thread held it at the fork."""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Callable

from ranch_core.forks import ProcessLock


def acquired_in_child(lock: Any, acquire: Callable[[Any], bool]) -> bool:
    """Fork while another thread holds ``lock``; whether the child could take it."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: exit at once, whatever happens
        os._exit(0 if acquire(lock) else 1)
    release.set()
    thread.join()
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_forked_child_gets_the_lock_free_though_a_thread_held_it() -> None:
    assert acquired_in_child(ProcessLock(), lambda lock: lock._lock.acquire(timeout=2))
    # The hang it prevents: a plain lock held by another thread stays held in the child.
    assert not acquired_in_child(threading.Lock(), lambda lock: lock.acquire(timeout=0.2))


def test_an_rlock_factory_gives_a_reentrant_lock_that_is_free_in_the_child() -> None:
    lock = ProcessLock(threading.RLock)
    with lock, lock:  # reentrant
        pass
    assert acquired_in_child(lock, lambda lock: lock._lock.acquire(timeout=2))
