"""``BlockingFacade``: an async storage seen as a blocking one, for the conformance suite.

Every coroutine method of the wrapped storage becomes a plain method that
runs the coroutine on a private event loop (one daemon thread for the whole
process) and waits for its result, so :class:`~ranch_core.testing.StorageConformance`
applies unchanged to an :class:`~ranch_core.async_protocols.AsyncStorage`::

    class TestMyAsyncStorage(StorageConformance):
        def make_storage(self):
            return BlockingFacade.of(lambda: MyAsyncStorage(...))

Several threads may call it at once (the waiting properties do): their
coroutines run concurrently on the one loop.
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


def _forget_the_loop_in_a_child() -> None:
    """In a forked child the thread that ran the parent's loop is gone (a
    coroutine sent there would wait forever) and the lock may have been held
    at the fork: start again from nothing (mutmut forks a child per mutant)."""
    global _loop, _loop_lock
    _loop = None
    _loop_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_the_loop_in_a_child)


def loop() -> asyncio.AbstractEventLoop:
    """The private event loop, started on first use in a daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="ranch-facade-loop", daemon=True).start()
            _loop = new
        return _loop


def run(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on the private loop and wait for its result (from any other thread)."""

    async def main() -> T:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(main(), loop()).result()


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
