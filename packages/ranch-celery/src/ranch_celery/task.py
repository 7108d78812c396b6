"""``lru_task``: a Celery task with a fair backlog, ``lru_delay`` and the seed's management API."""

from __future__ import annotations

import uuid
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
    overload,
)

from ranch_core import validation
from ranch_core.backlogs import check_backlog_name, check_cost, check_weight_function
from ranch_core.calls import Call, check_arguments
from ranch_core.dispatcher import FairDispatcher
from ranch_core.keys import Key
from ranch_core.management import KeyManagement
from ranch_core.protocols import Storage
from ranch_core.scheduler import WeightFunction

from ranch_celery.app import install
from ranch_celery.backlog import CeleryBacklog
from ranch_celery.batching import install_group_batching
from ranch_celery.canvas import lru_signature
from ranch_celery.config import check_config, check_positive_int
from ranch_celery.options import SUPPORTED, prepare_options
from ranch_celery.producer import store_call, store_many
from ranch_celery.registry import Declaration, RanchState
from ranch_celery.retries import capture_retry
from ranch_celery.revoking import revocable_result_class
from ranch_celery.storage import check_explicit
from ranch_celery.timing import timed

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: ``lru_apply_async`` options besides the fairness ones (and those Celery's canvas sets).
SUPPORTED_OPTIONS = SUPPORTED


class LRUResult(Protocol[R_co]):
    """What ``lru_delay`` returns, as type checkers see it: Celery's ``AsyncResult``
    of the user's call (``.get()`` is the task's return value)."""

    @property
    def id(self) -> str:
        """The call's task id (a dashed UUID unless ``task_id=`` was given)."""

    @property
    def state(self) -> str:
        """Celery's task state: ``PENDING``, ``SUCCESS``, ``FAILURE``, ``RETRY``, ``REVOKED``."""

    def get(self, timeout: Optional[float] = None, propagate: bool = True, **options: Any) -> R_co:
        """Wait for and return the task's result (re-raising its exception)."""

    def ready(self) -> bool:
        """Whether the call has finished."""

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        """Remove the call from its backlog if it waits there (``REVOKED``), then Celery's revoke."""


class LRUTaskMixin(KeyManagement):
    """Methods every :func:`lru_task` has on top of a normal Celery task.

    Mixed in front of the task's base class (``app.Task`` unless ``base=``
    is given); ``.delay``/``.apply_async`` keep working as plain Celery.
    """

    #: The task's ``backlog=`` (empty: the queue the task routes to).
    lru_backlog_option: str = ""

    def __class_getitem__(cls, item: Any) -> Any:
        return cls  # LRUTask[P, R] in annotations evaluated at runtime

    # -- plumbing -------------------------------------------------------------

    @property
    def lru_backlog(self) -> str:
        """Name of the task's backlog (fairness domain): ``backlog=``, or the queue it routes to."""
        return self._ranch_backlog.name

    @property
    def _ranch_backlog(self) -> CeleryBacklog:
        task = cast(Any, self)
        return RanchState.of(task.app).backlog_of(task.name)

    def _backlog_for(self, queue: Optional[str]) -> CeleryBacklog:
        """The task's backlog, or with ``queue=`` the backlog of that queue."""
        own = self._ranch_backlog
        if queue is None or queue == own.queue:
            return own
        return RanchState.of(cast(Any, self).app).backlog_for_queue(queue)

    @property
    def lru_dispatcher(self) -> FairDispatcher:
        """The :class:`~ranch_core.dispatcher.FairDispatcher` of this task's backlog (this process)."""
        return self._ranch_backlog.dispatcher()

    def AsyncResult(self, task_id: str, **kwargs: Any) -> Any:
        """Celery's ``AsyncResult`` of a call of this task, whose ``revoke()`` also removes
        the call from its backlog if it waits there (:mod:`ranch_celery.revoking`)."""
        task = cast(Any, self)
        result_class = revocable_result_class(task.app)
        return result_class(task_id, backend=task.backend, task_name=task.name, **kwargs)

    def apply_async(
        self, args: Any = None, kwargs: Any = None, task_id: Optional[str] = None, *rest: Any, **options: Any
    ) -> Any:
        """Celery's ``apply_async``, except that the retry of a call Ranch runs goes back to its
        backlog, and a Ranch signature (options carrying ``lru_key``) is stored in the fair backlog."""
        if capture_retry(args, kwargs, task_id, options):
            return cast(Any, self).AsyncResult(task_id)
        if "lru_key" in options and not rest:
            # A Ranch signature (lru_signature), applied by the producer or by Celery's canvas.
            lru_key = options.pop("lru_key")
            return self.lru_apply_async(lru_key, args or (), kwargs, task_id=task_id, **options)
        return cast(Any, super()).apply_async(args, kwargs, task_id, *rest, **options)

    # -- producing ------------------------------------------------------------

    def lru_delay(
        self,
        lru_key: Key,
        *args: Any,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Any:
        """Store a call of this task under ``lru_key`` and announce it; return its ``AsyncResult``.

        ``lru_key`` is a string or a ``(group, member)`` pair (README, "Two-level
        keys"); the running call sees it as ``self.request.lru_key``, a pair as a tuple.

        ``priority_weight`` sets the key's weight (lower = served more often;
        0.5 = twice as often as 1.0) without charging the key. ``expiry`` is
        seconds after which a call that has not started is dropped and its
        result set to ``REVOKED``. ``tags`` tags the key. Arguments are
        encoded as Celery's ``json`` serializer encodes them (kombu's JSON:
        datetime, Decimal, UUID, bytes come back as such). Bad input raises
        ``TypeError``/``ValueError`` naming it, and nothing is stored or published.
        """
        return self.lru_apply_async(
            lru_key, args, kwargs, priority_weight=priority_weight, expiry=expiry, tags=tags
        )

    def lru_apply_async(
        self,
        lru_key: Key,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Any:
        """Like :meth:`lru_delay` with explicit ``args``/``kwargs`` and Celery's ``apply_async`` options.

        Options with their Celery meaning: ``task_id``, ``headers``,
        ``expires`` (same as ``expiry``; not both), ``link``, ``link_error``,
        ``time_limit``, ``soft_time_limit``, ``shadow``, ``ignore_result``,
        ``add_to_parent``, ``argsrepr``/``kwargsrepr``, and ``queue`` (the
        call joins the backlog of that queue); plus those Celery's canvas
        sets (``chain``, ``chord``, ``group_id``, ...). ``countdown``/``eta``
        make a delayed call: stored now, it joins the key's backlog at its
        time (README, "Delayed calls"). Any other option raises ``TypeError``
        naming it (:mod:`ranch_celery.options`), and nothing is stored.
        """
        call_args, call_kwargs = check_arguments(args, kwargs)
        task = cast(Any, self)
        prepared = prepare_options(options, expiry, timezone=task.app.timezone)
        call_options = self._call_options()
        call_options.update(prepared.stored)
        if "shadow" not in call_options:
            shadow = task.shadow_name(call_args, call_kwargs, options)
            if shadow:
                call_options["shadow"] = str(shadow)
        backlog = self._backlog_for(prepared.queue)
        call = Call(args=call_args, kwargs=call_kwargs, options=call_options)
        task_id = prepared.task_id or str(uuid.uuid4())
        task_id = store_call(
            backlog, lru_key, call, task_id, priority_weight, prepared.expiry, tags, prepared.delay
        )
        result = task.AsyncResult(task_id)
        if prepared.add_to_parent:
            parent = task.app.current_worker_task
            if parent is not None:
                parent.add_trail(result)
        return result

    # -- canvas ---------------------------------------------------------------

    def lru_signature(
        self,
        lru_key: Key,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Any:
        """A Celery ``Signature`` of this task that enters the fair backlog under ``lru_key`` when applied.

        Use it as ``task.signature``: in ``chain``, ``group``, ``chord``
        (header or body), as ``link``/``link_error``. Whoever applies it (the
        producer, the worker that ran the previous step, the backend completing
        a chord) stores it with :meth:`lru_apply_async` (:mod:`ranch_celery.canvas`);
        ``options`` as there. A ``group`` stores its Ranch calls in bulk.
        """
        return lru_signature(self, lru_key, args, kwargs, priority_weight, expiry, tags, options)

    def lru_s(self, lru_key: Key, *args: Any, **kwargs: Any) -> Any:
        """``task.s(*args, **kwargs)`` entering the fair backlog under ``lru_key`` (:meth:`lru_signature`)."""
        return self.lru_signature(lru_key, args, kwargs)

    def lru_delay_many(
        self,
        lru_key: Key,
        calls: Iterable[Tuple[Sequence[Any], Optional[Mapping[str, Any]]]],
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> List[Any]:
        """Store many calls of this task under ``lru_key``; return their ``AsyncResult`` objects, in order.

        ``calls`` is an iterable of ``(args, kwargs)`` pairs (``kwargs`` may
        be ``None``). One storage round trip per batch of up to 1,000 calls
        and at most one wake-up published per batch (the worker that takes
        it fans out). All are stored or none: every pair is checked and
        encoded before anything is written, and a bad pair raises
        ``TypeError``/``ValueError`` naming its index and argument.
        ``priority_weight``, ``expiry`` and ``tags`` as in :meth:`lru_delay`,
        for every call.
        """
        ids = store_many(
            self._ranch_backlog, lru_key, calls, self._call_options(), priority_weight, expiry, tags
        )
        result_class = cast(Any, self).AsyncResult
        return [result_class(task_id) for task_id in ids]

    def _call_options(self) -> Dict[str, Any]:
        """The options stored with a call produced here: its task, and its parent if inside a task."""
        task = cast(Any, self)
        call_options: Dict[str, Any] = {"task": task.name}
        parent = task.app.current_worker_task
        if parent is not None and parent.request.id:
            call_options["parent_id"] = parent.request.id
            call_options["root_id"] = parent.request.root_id or parent.request.id
        return call_options

    # -- management API (the seed's names, from ranch_core.management.KeyManagement) --

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.lru_dispatcher

    def _fair_backlog(self) -> str:
        return self.lru_backlog


if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    P = ParamSpec("P")

    class LRUTask(LRUTaskMixin, Generic[P, R]):
        """A fair Celery task as type checkers see it (at runtime: Celery's task class
        with :class:`LRUTaskMixin` in front)."""

        name: str
        app: Any
        request: Any

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
        def run(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
        def delay(self, *args: P.args, **kwargs: P.kwargs) -> LRUResult[R]: ...
        def lru_delay(
            self,
            lru_key: Key,
            *args: Any,
            priority_weight: Optional[float] = None,
            expiry: Optional[float] = None,
            tags: Optional[Mapping[str, str]] = None,
            **kwargs: Any,
        ) -> LRUResult[R]: ...
        def lru_apply_async(
            self,
            lru_key: Key,
            args: Sequence[Any] = (),
            kwargs: Optional[Mapping[str, Any]] = None,
            *,
            priority_weight: Optional[float] = None,
            expiry: Optional[float] = None,
            tags: Optional[Mapping[str, str]] = None,
            **options: Any,
        ) -> LRUResult[R]: ...
        def lru_delay_many(
            self,
            lru_key: Key,
            calls: Iterable[Tuple[Sequence[Any], Optional[Mapping[str, Any]]]],
            *,
            priority_weight: Optional[float] = None,
            expiry: Optional[float] = None,
            tags: Optional[Mapping[str, str]] = None,
        ) -> List[LRUResult[R]]: ...
else:
    LRUTask = LRUTaskMixin


def _make_decorator(
    app: Any,
    config: Optional[Mapping[str, Any]],
    storage: Optional[Storage],
    weight_function: Optional[WeightFunction],
    backlog: Optional[str],
    max_wakeups: Optional[int],
    default_concurrency_limit: Optional[int],
    default_rate_limit: Optional[str],
    cost: Optional[str],
    task_options: Dict[str, Any],
) -> Callable[[Callable[..., Any]], Any]:
    checked_config = check_config(config)
    if max_wakeups is not None:
        check_positive_int(max_wakeups, "max_wakeups")
    validation.check_concurrency_limit(default_concurrency_limit, "default_concurrency_limit")
    validation.check_rate_limit(default_rate_limit, name="default_rate_limit")
    check_explicit(storage)
    check_weight_function(weight_function)
    check_cost(cost, weight_function)
    if backlog is not None:
        check_backlog_name(backlog)
    state = install(app)
    state.add_config(checked_config)
    install_group_batching()

    def decorate(fun: Callable[..., Any]) -> Any:
        if not callable(fun):
            raise TypeError("lru_task decorates a function")
        name = task_options.get("name") or app.gen_task_name(fun.__name__, fun.__module__)
        state.declare(
            Declaration(
                name,
                backlog,
                storage,
                weight_function,
                max_wakeups,
                default_concurrency_limit=default_concurrency_limit,
                default_rate_limit=default_rate_limit,
                cost=cost,
            )
        )
        options = dict(task_options)
        base = options.pop("base", None) or app.Task
        cls = type(f"LRU{base.__name__}", (LRUTaskMixin, base), {"lru_backlog_option": backlog or ""})
        return app.task(base=cls, **options)(timed(name, fun))

    return decorate


@overload
def lru_task(app: Any, fun: Callable[P, R]) -> LRUTask[P, R]: ...


@overload
def lru_task(
    app: Any,
    *,
    config: Optional[Mapping[str, Any]] = None,
    storage: Optional[Storage] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    max_wakeups: Optional[int] = None,
    default_concurrency_limit: Optional[int] = None,
    default_rate_limit: Optional[str] = None,
    cost: Optional[str] = None,
    **task_options: Any,
) -> Callable[[Callable[P, R]], LRUTask[P, R]]: ...


def lru_task(
    app: Any,
    fun: Optional[Callable[..., Any]] = None,
    *,
    config: Optional[Mapping[str, Any]] = None,
    storage: Optional[Storage] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    max_wakeups: Optional[int] = None,
    default_concurrency_limit: Optional[int] = None,
    default_rate_limit: Optional[str] = None,
    cost: Optional[str] = None,
    **task_options: Any,
) -> Union[Any, Callable[[Callable[..., Any]], Any]]:
    """Decorate a function as a Celery task of ``app`` with a fair backlog.

    ``@lru_task(app)`` or ``@lru_task(app, config=..., storage=...,
    weight_function=..., backlog=..., **task_options)``: ``task_options`` go
    to ``app.task`` (``bind``, ``name``, ``queue``, ``max_retries``, ...).

    ``backlog`` names the fairness domain; by default it is the queue the
    task routes to (resolved at first use, ``task_routes`` included), so the
    tasks sharing a queue share one fair order across keys. Weights, tags
    and custom data belong to the key in that backlog.
    ``max_wakeups`` bounds the backlog's outstanding wake-up messages
    (default: the ``ranch_max_wakeups`` setting, 64; tasks sharing a
    backlog must not give it two values, ``BacklogConflict``).
    ``default_concurrency_limit`` (an int >= 1) and ``default_rate_limit``
    (Celery's syntax, ``"10/s"``) are the per-key controls of every key of
    the backlog that has no setting of its own (``set_concurrency_limit``,
    ``set_rate_limit``; default: the ``ranch_default_concurrency_limit`` /
    ``ranch_default_rate_limit`` settings, none); like ``max_wakeups``
    they belong to the backlog (``BacklogConflict`` if two tasks differ).
    ``weight_function(lru_key, LRUKeyMetadata) -> float`` is what serving a
    key costs (default: its stored weight); tasks sharing a backlog share it.
    ``cost="runtime"`` makes a call cost its key its run time times its
    weight (ranch-core README, "Fair by time"; default ``"calls"``); it
    belongs to the backlog and takes no ``weight_function``. The run time
    is the decorated function's, timed while the worker runs the call
    (:mod:`ranch_celery.timing`).
    ``config`` takes celery-ranch's settings for the whole app
    (:mod:`ranch_celery.config`). Storage is resolved at first use
    (:mod:`ranch_celery.storage`), so the app may get its broker later
    (``celery worker -b``, ``CELERY_BROKER_URL``, ``config_from_object``).
    """
    decorate = _make_decorator(
        app,
        config,
        storage,
        weight_function,
        backlog,
        max_wakeups,
        default_concurrency_limit,
        default_rate_limit,
        cost,
        task_options,
    )
    if fun is not None:
        return decorate(fun)
    return decorate
