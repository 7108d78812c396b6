"""``ranch_core.testing.facade.run``: one private loop, run by whichever thread waits on it."""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from typing import Any, Dict, List

import pytest
from ranch_core.testing import facade


def in_thread(target: Any) -> Dict[str, Any]:
    """Start ``target()`` in a thread; the returned dict gets its ``result`` or ``error``."""
    out: Dict[str, Any] = {}

    def body() -> None:
        try:
            out["result"] = target()
        except BaseException as exc:  # handed to the test, which asserts on it
            out["error"] = exc

    out["thread"] = threading.Thread(target=body, daemon=True)
    out["thread"].start()
    return out


def test_the_calling_thread_runs_the_loop() -> None:
    async def where() -> str:
        asyncio.get_running_loop()
        return threading.current_thread().name

    assert facade.run(where()) == threading.current_thread().name


def test_a_coroutine_from_a_second_thread_runs_on_the_loop_the_first_thread_runs() -> None:
    private = facade.loop()
    event: Any = None  # made on the loop (before 3.10 an Event binds to the loop current at creation)
    first_waits = threading.Event()

    async def wait_for_it() -> str:
        nonlocal event
        event = asyncio.Event()
        first_waits.set()
        await event.wait()
        return "woken"

    async def wake() -> str:
        assert event is not None
        event.set()
        return threading.current_thread().name

    first = in_thread(lambda: facade.run(wait_for_it()))
    assert first_waits.wait(10)
    # The first thread holds the loop, blocked in its coroutine: this one's
    # coroutine runs there, and wakes it.
    assert facade.run(wake()) == first["thread"].name
    first["thread"].join(10)
    assert first == {"thread": first["thread"], "result": "woken"}
    assert not private.is_running()


def test_a_waiting_thread_takes_the_loop_over_when_its_runner_is_done() -> None:
    second_waits = threading.Event()
    steps: List[str] = []

    async def longer() -> str:
        second_waits.set()
        await asyncio.sleep(0.05)  # still pending when the first thread's coroutine returns
        steps.append("second done")
        return threading.current_thread().name

    async def shorter() -> None:
        second = in_thread(lambda: facade.run(longer()))
        while not second_waits.is_set():
            await asyncio.sleep(0.001)
        steps.append("first done")
        holder["second"] = second

    holder: Dict[str, Any] = {}
    facade.run(shorter())
    second = holder["second"]
    second["thread"].join(10)
    assert steps == ["first done", "second done"]
    # The second thread's coroutine finished on the loop the second thread ran.
    assert second["result"] == second["thread"].name


def test_errors_reach_the_caller_on_either_path() -> None:
    first_waits, release = threading.Event(), threading.Event()

    async def hold() -> None:
        first_waits.set()
        while not release.is_set():
            await asyncio.sleep(0.001)

    async def fail(exc: BaseException) -> None:
        raise exc

    with pytest.raises(ValueError, match="own"):
        facade.run(fail(ValueError("own")))
    first = in_thread(lambda: facade.run(hold()))
    assert first_waits.wait(10)
    # Not the loop's thread: a TimeoutError of the coroutine is its result, not a wait's end.
    with pytest.raises(TimeoutError, match="the coroutine's"):
        facade.run(fail(TimeoutError("the coroutine's")))
    release.set()
    first["thread"].join(10)
    assert "error" not in first


def test_a_forked_child_starts_with_a_loop_of_its_own() -> None:
    parent_loop = facade.loop()
    first_waits, release = threading.Event(), threading.Event()

    async def hold() -> None:
        first_waits.set()
        while not release.is_set():
            await asyncio.sleep(0.001)

    async def answer() -> int:
        return 42

    first = in_thread(lambda: facade.run(hold()))
    assert first_waits.wait(10)  # the loop is running in that thread, its lock held
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: exit at once, whatever happens
        ok = False
        try:
            ok = facade.loop() is not parent_loop and facade.run(answer()) == 42
        finally:
            os._exit(0 if ok else 1)
    release.set()
    first["thread"].join(10)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
