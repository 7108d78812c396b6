"""Bad input as properties: refused with a clear error, nothing stored."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List

from ranch_core.testing.base import (
    ConformanceBase,
)
from ranch_core.testing.machine import BAD_PUSHES


class BadInputProperties(ConformanceBase):
    """Bad input is refused before anything is written."""

    def test_bad_push_raises_and_stores_nothing(self) -> None:
        for bad in BAD_PUSHES:
            scheduler, _ = self.scheduler()
            args: Dict[str, Any] = {
                "key": "a", "payload": 1, "weight": None, "expiry": None, "task_id": None, "tags": None,
                "delay": None,
            }  # fmt: skip
            args.update(bad)
            try:
                scheduler.push(
                    args["key"], args["payload"], weight=args["weight"], expiry=args["expiry"],
                    task_id=args["task_id"], tags=args["tags"], delay=args["delay"],
                )  # fmt: skip
            except (TypeError, ValueError) as exc:
                assert str(exc), "the error must say what is wrong"
                (argument,) = bad
                named = {
                    "key": "key",
                    "weight": "weight",
                    "expiry": "expiry",
                    "task_id": "task_id",
                    "delay": "delay",
                }
                named.update(payload="payload", tags="tag")
                assert named[argument] in str(exc), f"{exc!r} does not name {argument}"
            else:
                raise AssertionError(f"push accepted {bad!r}")
            assert len(scheduler) == 0
            assert scheduler.status().backlog_size == 0 and scheduler.status().delayed == 0
            assert scheduler.metadata("a").weight == 1.0
            assert scheduler.metadata("a").tags == {}
            assert scheduler.pop() is None

    def test_bad_tracker_input_raises(self) -> None:
        scheduler, _ = self.scheduler()
        calls: List[Callable[[], Any]] = [
            lambda: scheduler.set_weight("a", 0),
            lambda: scheduler.set_weight("a", math.nan),
            lambda: scheduler.set_weight("a", 1e308),
            lambda: scheduler.set_weight("a", 10**400),
            lambda: scheduler.set_weight("", 1.0),
            lambda: scheduler.set_custom_data("a", "x", object()),
            lambda: scheduler.set_custom_data("a", "", 1),
            lambda: scheduler.add_tag("a", "", "v"),
            lambda: scheduler.add_tag("a", "plan", 3),  # type: ignore[arg-type]
            lambda: scheduler.metadata(None),  # type: ignore[arg-type]
        ]
        for call in calls:
            try:
                call()
            except (TypeError, ValueError):
                continue
            raise AssertionError("bad tracker input accepted")
        assert scheduler.metadata("a").to_dict() == {
            "key": "a", "weight": 1.0, "last_served": None, "pending_tasks": 0,
            "served_total": 0, "tags": {}, "custom_data": {}, "concurrency_limit": None,
            "running": 0, "rate_limit": None, "paused": False, "max_backlog": None, "delayed_tasks": 0,
            "run_estimate": None,
        }  # fmt: skip
