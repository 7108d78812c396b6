"""``lru_task``: a Celery task with a fair backlog, ``lru_delay`` and the seed's management API."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, TypeVar, Union, cast, overload

from ranch_core import Storage, validation
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher
from ranch_core.management import KeyManagement
from ranch_core.scheduler import WeightFunction

from ranch_celery import storage as storage_rules
from ranch_celery.state import BacklogBinding, RanchState
from ranch_celery.worker import capture_retry

F = TypeVar("F", bound=Callable[..., Any])

#: ``lru_apply_async`` options besides the fairness ones; anything else is a ``TypeError``.
SUPPORTED_OPTIONS = ("task_id", "headers")


class LRUTaskMixin(KeyManagement):
    """Methods every :func:`lru_task` has on top of a normal Celery task.

    Mixed in front of the task's base class (``app.Task`` unless ``base=``
    is given); ``.delay``/``.apply_async`` keep working as plain Celery.
    """

    #: Name of the task's backlog (fairness domain); set per task class.
    lru_backlog: str = ""

    # -- plumbing -------------------------------------------------------------

    @property
    def _ranch_binding(self) -> BacklogBinding:
        return RanchState.of(cast(Any, self).app).binding(self.lru_backlog)

    @property
    def lru_dispatcher(self) -> FairDispatcher:
        """The :class:`~ranch_core.dispatcher.FairDispatcher` of this task's backlog (this process)."""
        return self._ranch_binding.dispatcher()

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
        result set to ``REVOKED``. ``tags`` tags the key. Bad input raises
        ``TypeError``/``ValueError`` and nothing is stored or published.
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
        if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
            raise TypeError(f"args must be a list or tuple, not {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping) or not all(isinstance(name, str) for name in kwargs):
            raise TypeError("kwargs must be a mapping with str keys")
        task_id = options.get("task_id")
        if task_id is not None:
            validation.check_name(task_id, "task_id")
        headers = options.get("headers")
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
        task = cast(Any, self)
        call_options: Dict[str, Any] = {"task": task.name}
        if headers:
            call_options["headers"] = dict(headers)
        parent = task.app.current_worker_task
        if parent is not None and parent.request.id:
            call_options["parent_id"] = parent.request.id
            call_options["root_id"] = parent.request.root_id or parent.request.id
        call = Call(args=list(args), kwargs=dict(kwargs), options=call_options)
        new_id = self.lru_dispatcher.submit(
            lru_key, call, priority_weight=priority_weight, expiry=expiry, tags=tags, task_id=task_id
        )
        return task.AsyncResult(new_id)

    # -- management API (the seed's names, from ranch_core.management.KeyManagement) --

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.lru_dispatcher

    def _fair_backlog(self) -> str:
        return self.lru_backlog


def _make_decorator(
    app: Any,
    storage: Optional[Storage],
    weight_function: Optional[WeightFunction],
    backlog: Optional[str],
    task_options: Dict[str, Any],
) -> Callable[[Callable[..., Any]], Any]:
    if weight_function is not None and not callable(weight_function):
        raise TypeError("weight_function must be callable: (lru_key, LRUKeyMetadata) -> float")
    if backlog is not None:
        validation.check_name(backlog, "backlog")
        if "{" in backlog or "}" in backlog:
            raise ValueError(f"backlog must not contain '{{' or '}}': {backlog!r}")

    def decorate(fun: Callable[..., Any]) -> Any:
        if not callable(fun):
            raise TypeError("lru_task decorates a function")
        name = task_options.get("name") or app.gen_task_name(fun.__name__, fun.__module__)
        backlog_name = backlog or name
        state = RanchState.of(app)
        binding = state.declare(
            backlog_name,
            name,
            lambda: storage_rules.resolve_storage(app, backlog_name, storage),
            weight_function,
            explicit_storage=storage is not None,
        )
        options = dict(task_options)
        base = options.pop("base", None) or app.Task
        cls = type(f"LRU{base.__name__}", (LRUTaskMixin, base), {"lru_backlog": binding.name})
        return app.task(base=cls, **options)(fun)

    return decorate


@overload
def lru_task(app: Any, fun: F) -> Any: ...


@overload
def lru_task(
    app: Any,
    *,
    storage: Optional[Storage] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]: ...


def lru_task(
    app: Any,
    fun: Optional[Callable[..., Any]] = None,
    *,
    storage: Optional[Storage] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    **task_options: Any,
) -> Union[Any, Callable[[Callable[..., Any]], Any]]:
    """Decorate a function as a Celery task of ``app`` with a fair backlog.

    ``@lru_task(app)`` or ``@lru_task(app, storage=..., weight_function=...,
    backlog=..., **task_options)``: ``task_options`` go to ``app.task``
    (``bind``, ``name``, ``queue``, ``max_retries``, ...). ``backlog`` names
    the fairness domain (default: the task's name); tasks naming the same
    backlog share keys. ``weight_function(lru_key, LRUKeyMetadata) -> float``
    is what serving that key costs (default: its stored weight). Storage
    resolution is documented in :mod:`ranch_celery.storage`; a broker that
    is neither Redis nor ``memory://`` with no storage configured raises
    ``ValueError`` here.
    """
    decorate = _make_decorator(app, storage, weight_function, backlog, task_options)
    if fun is not None:
        return decorate(fun)
    return decorate
