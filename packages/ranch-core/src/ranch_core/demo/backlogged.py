"""Keys kept backlogged, and worker threads that drain them (the ``runtime``
and ``groups`` scenarios, on ranch-core alone).

A :class:`Source` is where the workers take calls from: a plain FIFO queue
fed in turn (:func:`fifo_source`), or a :class:`~ranch_core.FairScheduler`
(:func:`scheduler_source`). :func:`drain` runs the worker threads; each tops
its call's key up whenever fewer than half a refill wait, so every key stays
backlogged for the whole run.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Hashable, List, Optional, Sequence, Tuple, TypeVar

import attrs

from ranch_core.keys import Key
from ranch_core.scheduler import FairScheduler

K = TypeVar("K", bound=Hashable)

#: How long an idle worker blocks in one take before it looks whether the run is over.
TAKE_TIMEOUT = 0.05


@attrs.frozen
class Source(Generic[K]):
    """``take()`` gives a call as ``(its key, what ends it)``, or ``None`` when
    none came in time; ``waiting(key)`` counts a key's waiting calls;
    ``refill(key)`` sends a key more."""

    take: Callable[[], Optional[Tuple[K, Callable[[], object]]]]
    waiting: Callable[[K], int]
    refill: Callable[[K], None]


def fifo_source(keys: Sequence[K], size: int) -> Source[K]:
    """A FIFO queue fed in turn, as producers would send: one call of each key,
    again and again (a refill of one key sends ``size`` rounds of all)."""
    fifo: queue.Queue[K] = queue.Queue()
    waiting = dict.fromkeys(keys, 0)
    lock = threading.Lock()

    def take() -> Optional[Tuple[K, Callable[[], object]]]:
        try:
            key = fifo.get(timeout=TAKE_TIMEOUT)
        except queue.Empty:
            return None
        with lock:
            waiting[key] -= 1
        return key, lambda: None

    def refill(_: K) -> None:
        with lock:
            for key in keys:
                waiting[key] += size
        for _turn in range(size):
            for key in keys:
                fifo.put(key)

    return Source(take, waiting.__getitem__, refill)


def scheduler_source(
    scheduler: FairScheduler, size: int, key_of: Callable[[K], Key], of_key: Callable[[Key], K]
) -> Source[K]:
    """``scheduler``'s fair choice; a refill pushes ``size`` calls (``key_of``
    spells a key as the scheduler's, ``of_key`` reads it back)."""

    def take() -> Optional[Tuple[K, Callable[[], object]]]:
        task = scheduler.pop(timeout=TAKE_TIMEOUT)
        if task is None:
            return None
        return of_key(task.key), lambda: scheduler.ack(task.task_id)  # run time measured by the storage

    def refill(key: K) -> None:
        scheduler.push_many(key_of(key), [None] * size)

    return Source(take, lambda key: scheduler.metadata(key_of(key)).pending_tasks, refill)


def drain(
    source: Source[K],
    keys: Sequence[K],
    *,
    size: int,
    slots: int,
    going: Callable[[], bool],
    run: Callable[[K], None],
) -> None:
    """``slots`` worker threads take calls from ``source`` while ``going()``,
    run each (``run(key)``: the call's work), end it and top its key up to
    ``size``; returns when every thread has stopped."""
    lock = threading.Lock()
    for key in keys:
        if source.waiting(key) < size // 2:
            source.refill(key)

    def work() -> None:
        while going():
            taken = source.take()
            if taken is None:
                continue
            key, done = taken
            run(key)
            done()
            with lock:
                if source.waiting(key) < size // 2:
                    source.refill(key)

    threads: List[threading.Thread] = [threading.Thread(target=work, daemon=True) for _ in range(slots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
