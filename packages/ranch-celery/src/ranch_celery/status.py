"""``get_status()``: celery-ranch's module-level status, for every backlog of an app.

celery-ranch had one global backlog; Ranch has one per queue (or per
``backlog=``), so :func:`get_status` sums over the backlogs of one app
(the current app unless one is given) and lists each under ``backlogs``.
"""

from __future__ import annotations

from typing import Any, Dict

from ranch_core.dispatcher import FairDispatcher
from ranch_core.errors import RanchError
from ranch_core.management import KeyManagement

from ranch_celery.registry import RanchState

#: Counters summed over the backlogs.
SUMMED = ("backlog_size", "unique_lru_keys", "leased", "expired_total", "served_total")


class _BacklogStatus(KeyManagement):
    def __init__(self, name: str, backlog: Any) -> None:
        self._name = name
        self._backlog = backlog

    def _fair_dispatcher(self) -> FairDispatcher:
        dispatcher: FairDispatcher = self._backlog.dispatcher()
        return dispatcher

    def _fair_backlog(self) -> str:
        return self._name


def get_status(app: Any = None) -> Dict[str, Any]:
    """Status of every backlog of ``app`` (default: Celery's current app).

    ``initialized`` (the app has ``lru_task``\\ s), ``storage_type`` (the
    storage class, comma-separated if backlogs differ), ``backlog_size``,
    ``unique_lru_keys`` (active keys; a key active in two backlogs counts
    twice), ``leased``, ``expired_total``, ``served_total`` (summed),
    ``health`` (``True`` if every backlog answered, else ``False``
    with ``errors``), and ``backlogs``: ``{name: get_system_status() of
    that backlog}``.
    """
    if app is None:
        from celery import current_app

        app = current_app._get_current_object()
    status: Dict[str, Any] = {
        "initialized": False,
        "storage_type": "none",
        "health": True,
        "backlogs": {},
        **dict.fromkeys(SUMMED, 0),
    }
    state = RanchState.of(app)
    try:
        backlogs = state.resolve()
    except RanchError as exc:
        status.update(health=False, errors={"": str(exc)})
        return status
    if not backlogs:
        return status
    types = []
    errors: Dict[str, str] = {}
    for backlog in backlogs:
        one = _BacklogStatus(backlog.name, backlog).get_system_status()
        status["backlogs"][backlog.name] = one
        if one["storage_type"] not in types:
            types.append(one["storage_type"])
        if not one["health"]:
            errors[backlog.name] = one.get("error", "unavailable")
            continue
        for name in SUMMED:
            status[name] += one[name]
    status["initialized"] = True
    status["storage_type"] = ", ".join(types)
    if errors:
        status.update(health=False, errors=errors)
    return status
