"""``ranch why BACKLOG TASK_ID``: where a waiting call stands and what holds it."""

from __future__ import annotations

import time
from typing import List

from ranch_core.keys import key_text

from ranch_redis.cli.connect import Connection
from ranch_redis.cli.tables import ago, dumps
from ranch_redis.views import CallPlace


def why(connection: Connection, backlog: str, task_id: str, as_json: bool) -> str:
    """The call's place (``why.lua``), as sentences or JSON."""
    storage = connection.backlog(backlog)
    now = time.time()
    place = storage.why(task_id, now)
    if as_json:
        return dumps({"backlog": storage.namespace, **place.to_dict()})
    return "\n".join(explain(place, now))


def explain(place: CallPlace, now: float) -> List[str]:
    """What an operator reads: the state, then the place, then what holds the call."""
    call = f"call {place.task_id}"
    key = None if place.key is None else key_text(place.key)
    if place.state == "missing":
        return [f"{call} is not stored: it ran, or was revoked, purged or expired, or never was"]
    if place.state == "corrupt":
        return [f"{call}: its record cannot be read (the next pop or repair reports and removes it)"]
    if place.state == "running":
        return [f"{call} of key {key!r} is running: leased until {ago(place.lease_deadline, now)}"]
    if place.state == "delayed":
        lines = [
            f"{call} of key {key!r} is delayed; stored {ago(place.enqueued_at, now)}",
            f"held by: its delay (countdown/eta/delay=): it joins the tail of its key "
            f"{ago(place.due_at, now)}, then takes its fair turn",
        ]
        if place.expires_at is not None and place.due_at is not None and place.expires_at <= place.due_at:
            lines.append(
                f"its expiry comes first ({ago(place.expires_at, now)}): it will be dropped, never run"
            )
        return lines
    lines = [
        f"{call} of key {key!r} is waiting; stored {ago(place.enqueued_at, now)}",
        f"position in its key: {place.position} of {place.key_waiting} waiting (0 = next)",
    ]
    if place.expired:
        lines.append(f"held by: its expiry ({ago(place.expires_at, now)}): it is dropped, never run")
        return lines
    if place.blocked_by is None and place.place is not None:
        lines.append(
            f"its key's place in the fair order: {place.place} of {place.selectable_keys} (0 = next)"
        )
        lines.append(
            f"about {place.dispatches_ahead} dispatches ahead (equal weights, every key keeping work)"
        )
        lines.append("held by: nothing; it runs in turn")
        return lines
    lines.append(f"its key is not in the fair order now ({place.parked_keys} keys parked)")
    if place.blocked_group is not None:
        # A pair's call held by its group's controls (the string key's).
        group = place.blocked_group
        if place.blocked_by == "paused":
            lines.append(
                f"held by: its group {group!r} is paused (`ranch resume BACKLOG {group}` lets it run)"
            )
        elif place.blocked_by == "concurrency limit":
            lines.append(
                f"held by: its group {group!r}'s concurrency limit: "
                f"{place.running} running of {place.concurrency_limit} in the group"
            )
        else:
            lines.append(
                f"held by: its group {group!r}'s rate limit {place.rate_limit}: "
                f"the group may start a call {ago(place.eligible_at, now)}"
            )
        return lines
    if place.blocked_by == "paused":
        lines.append("held by: pause (`ranch resume BACKLOG KEY` lets it run)")
    elif place.blocked_by == "concurrency limit":
        lines.append(f"held by: concurrency limit: {place.running} running of {place.concurrency_limit}")
    elif place.blocked_by == "rate limit":
        lines.append(
            f"held by: rate limit {place.rate_limit}: the key may start a call {ago(place.eligible_at, now)}"
        )
    else:
        lines.append(
            "held by: nothing known; the key is not selectable (`FairScheduler.repair()` restores it)"
        )
    return lines
