"""``BlockingFacade``: an async storage seen as a blocking one, for the conformance suite.

Every coroutine method of the wrapped storage becomes a plain method that
runs the coroutine on one private event loop for the whole process and waits
for its result, so :class:`~ranch_core.testing.StorageConformance` applies
unchanged to an :class:`~ranch_core.async_protocols.AsyncStorage`::

    class TestMyAsyncStorage(StorageConformance):
        def make_storage(self):
            return BlockingFacade.of(lambda: MyAsyncStorage(...))

The calling thread runs the loop itself. Several threads may call at once
(the waiting properties do): one of them runs the loop and the others'
coroutines run on it, concurrently; when that thread's own coroutine is done,
a thread still waiting takes the loop over.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Tuple, TypeVar, cast

from ranch_core.protocols import Storage

T = TypeVar("T")

_loop: Optional[asyncio.AbstractEventLoop] = None
_loop_lock = threading.Lock()
#: Held by the thread running the loop.
_driver = threading.Lock()
#: Notified when a thread lets the loop go and when a coroutine sent to the loop is done.
_changed = threading.Condition()


def _forget_the_loop_in_a_child() -> None:
    """In a forked child the parent's loop may have been running in a thread
    that is gone, and the locks may have been held at the fork: start again
    from nothing (mutmut forks a child per mutant)."""
    global _loop, _loop_lock, _driver, _changed
    _loop = None
    _loop_lock = threading.Lock()
    _driver = threading.Lock()
    _changed = threading.Condition()


os.register_at_fork(after_in_child=_forget_the_loop_in_a_child)


def _notify(*_args: object) -> None:
    with _changed:
        _changed.notify_all()


def _drive(private: asyncio.AbstractEventLoop, awaitable: Awaitable[T]) -> T:
    """Run the loop in this thread (which holds ``_driver``) until ``awaitable`` is done."""
    try:
        return private.run_until_complete(awaitable)
    finally:
        _driver.release()
        _notify()


def loop() -> asyncio.AbstractEventLoop:
    """The private event loop, made on first use; the threads waiting on it run it."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
        return _loop


def run(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on the private loop and wait for its result (from any thread
    outside a coroutine)."""

    async def main() -> T:
        return await awaitable

    private = loop()
    if _driver.acquire(blocking=False):
        return _drive(private, main())  # no thread runs the loop: this one does
    future = asyncio.run_coroutine_threadsafe(main(), private)
    future.add_done_callback(_notify)
    while True:
        with _changed:
            while not future.done() and _driver.locked():
                _changed.wait()
        if future.done():
            return future.result()
        if _driver.acquire(blocking=False):  # the thread that ran the loop let it go
            return _drive(private, asyncio.wrap_future(future, loop=private))


class BlockingFacade:
    """A blocking view of an async storage (see the module's docstring).

    The optional protocols (:class:`~ranch_core.protocols.Controls`,
    :class:`~ranch_core.protocols.Repairable`,
    :class:`~ranch_core.protocols.RuntimeCosts`) are methods of the facade's
    class when the wrapped storage has them: from Python 3.12 ``isinstance``
    with a runtime-checkable protocol looks the methods up on the class and
    no longer sees what ``__getattr__`` forwards.
    """

    def __new__(cls, storage: Any) -> BlockingFacade:
        mixins = tuple(
            mixin for names, mixin in _OPTIONAL if all(callable(getattr(storage, n, None)) for n in names)
        )
        if cls is BlockingFacade and mixins:
            cls = _facade_class(mixins)
        return object.__new__(cls)

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    @classmethod
    def of(cls, make: Callable[[], Any]) -> Storage:
        """A facade over ``make()``, called on the private loop (clients bind to it)."""

        async def build() -> Any:
            return make()

        return cast(Storage, cls(run(build())))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.storage, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return run(attribute(*args, **kwargs))

        return call


class _ControlsMethods:
    def set_control(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("set_control")(*args, **kwargs)

    def purge_key(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("purge_key")(*args, **kwargs)

    def revoke(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("revoke")(*args, **kwargs)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


class _RepairMethods:
    def repair(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("repair")(*args, **kwargs)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


class _RuntimeMethods:
    # RuntimeCosts names pop and finish too: on the class, or isinstance misses them (3.12+).
    def pop(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("pop")(*args, **kwargs)

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("finish")(*args, **kwargs)

    def run_estimate(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("run_estimate")(*args, **kwargs)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


_OPTIONAL = (
    (("set_control", "purge_key", "revoke"), _ControlsMethods),
    (("repair",), _RepairMethods),
    (("run_estimate",), _RuntimeMethods),
)


@functools.cache
def _facade_class(mixins: Tuple[type, ...]) -> type:
    return type("BlockingFacade", (*mixins, BlockingFacade), {"__doc__": BlockingFacade.__doc__})
