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

from ranch_core.backlogs import check_backlog_name, check_weight_function
from ranch_core.calls import Call, check_arguments, optional_str
from ranch_core.dispatcher import FairDispatcher
from ranch_core.management import KeyManagement
from ranch_core.protocols import MAX_BATCH, Storage
from ranch_core.scheduler import WeightFunction

from ranch_celery.app import install
from ranch_celery.backlog import CeleryBacklog
from ranch_celery.codec import explain_unencodable
from ranch_celery.config import check_config, check_positive_int
from ranch_celery.registry import Declaration, RanchState
from ranch_celery.retries import capture_retry
from ranch_celery.storage import check_explicit

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: ``lru_apply_async`` options besides the fairness ones; anything else is a ``TypeError``.
SUPPORTED_OPTIONS = ("task_id", "headers")


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

    @property
    def lru_dispatcher(self) -> FairDispatcher:
        """The :class:`~ranch_core.dispatcher.FairDispatcher` of this task's backlog (this process)."""
        return self._ranch_backlog.dispatcher()

    def apply_async(
        self, args: Any = None, kwargs: Any = None, task_id: Optional[str] = None, *rest: Any, **options: Any
    ) -> Any:
        """Celery's ``apply_async``, except that the retry of a call Ranch runs goes back to its backlog."""
        if capture_retry(args, kwargs, task_id, options):
            return cast(Any, self).AsyncResult(task_id)
        return cast(Any, super()).apply_async(args, kwargs, task_id, *rest, **options)

    # -- producing ------------------------------------------------------------

    def lru_delay(
        self,
        lru_key: str,
        *args: Any,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Any:
        """Store a call of this task under ``lru_key`` and announce it; return its ``AsyncResult``.

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
        lru_key: str,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Any:
        """Like :meth:`lru_delay` with explicit ``args``/``kwargs``; options ``task_id``, ``headers``."""
        unsupported = sorted(set(options) - set(SUPPORTED_OPTIONS))
        if unsupported:
            raise TypeError(
                f"lru_apply_async does not support {', '.join(unsupported)} "
                f"(supported: {', '.join(SUPPORTED_OPTIONS)}, priority_weight, expiry, tags)"
            )
        call_args, call_kwargs = check_arguments(args, kwargs)
        task_id = optional_str(options.get("task_id"), "task_id") or str(uuid.uuid4())
        headers = options.get("headers")
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
        task = cast(Any, self)
        call_options = self._call_options()
        if headers:
            call_options["headers"] = dict(headers)
        call = Call(args=call_args, kwargs=call_kwargs, options=call_options)
        backlog = self._ranch_backlog
        try:
            new_id = backlog.dispatcher().submit(
                lru_key, call, priority_weight=priority_weight, expiry=expiry, tags=tags, task_id=task_id
            )
        except TypeError as exc:
            serializer = backlog.serializer
            named = None if serializer is None else explain_unencodable(serializer, call_args, call_kwargs)
            if named is not None:
                raise named from exc
            raise
        return task.AsyncResult(new_id)

    def lru_delay_many(
        self,
        lru_key: str,
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
        if isinstance(calls, (str, bytes, Mapping)) or not isinstance(calls, Iterable):
            raise TypeError(f"calls must be an iterable of (args, kwargs) pairs, not {type(calls).__name__}")
        task = cast(Any, self)
        options = self._call_options()
        checked: List[Call] = []
        for index, pair in enumerate(calls):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"calls[{index}] must be an (args, kwargs) pair, not {pair!r:.80}")
            try:
                call_args, call_kwargs = check_arguments(pair[0], pair[1])
            except TypeError as exc:
                raise TypeError(f"calls[{index}]: {exc}") from None
            checked.append(Call(args=call_args, kwargs=call_kwargs, options=options))
        backlog = self._ranch_backlog
        serializer = backlog.serializer
        if len(checked) > MAX_BATCH and serializer is not None:
            # The dispatcher stores batch by batch: check every call before the first is written.
            for index, call in enumerate(checked):
                named = explain_unencodable(serializer, call.args, call.kwargs)
                if named is not None:
                    raise TypeError(f"calls[{index}]: {named}")
        task_ids = [str(uuid.uuid4()) for _ in checked]
        try:
            ids = backlog.dispatcher().submit_many(
                lru_key,
                checked,
                priority_weight=priority_weight,
                expiry=expiry,
                tags=tags,
                task_ids=task_ids,
            )
        except TypeError as exc:
            if serializer is not None:
                for index, call in enumerate(checked):
                    named = explain_unencodable(serializer, call.args, call.kwargs)
                    if named is not None:
                        raise TypeError(f"calls[{index}]: {named}") from exc
            raise
        result_class = task.AsyncResult
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
            lru_key: str,
            *args: Any,
            priority_weight: Optional[float] = None,
            expiry: Optional[float] = None,
            tags: Optional[Mapping[str, str]] = None,
            **kwargs: Any,
        ) -> LRUResult[R]: ...
        def lru_apply_async(
            self,
            lru_key: str,
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
            lru_key: str,
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
    task_options: Dict[str, Any],
) -> Callable[[Callable[..., Any]], Any]:
    checked_config = check_config(config)
    if max_wakeups is not None:
        check_positive_int(max_wakeups, "max_wakeups")
    check_explicit(storage)
    check_weight_function(weight_function)
    if backlog is not None:
        check_backlog_name(backlog)
    state = install(app)
    state.add_config(checked_config)

    def decorate(fun: Callable[..., Any]) -> Any:
        if not callable(fun):
            raise TypeError("lru_task decorates a function")
        name = task_options.get("name") or app.gen_task_name(fun.__name__, fun.__module__)
        state.declare(Declaration(name, backlog, storage, weight_function, max_wakeups))
        options = dict(task_options)
        base = options.pop("base", None) or app.Task
        cls = type(f"LRU{base.__name__}", (LRUTaskMixin, base), {"lru_backlog_option": backlog or ""})
        return app.task(base=cls, **options)(fun)

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
    ``weight_function(lru_key, LRUKeyMetadata) -> float`` is what serving a
    key costs (default: its stored weight); tasks sharing a backlog share it.
    ``config`` takes celery-ranch's settings for the whole app
    (:mod:`ranch_celery.config`). Storage is resolved at first use
    (:mod:`ranch_celery.storage`), so the app may get its broker later
    (``celery worker -b``, ``CELERY_BROKER_URL``, ``config_from_object``).
    """
    decorate = _make_decorator(app, config, storage, weight_function, backlog, max_wakeups, task_options)
    if fun is not None:
        return decorate(fun)
    return decorate
