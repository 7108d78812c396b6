"""Two-level keys ``(group, member)`` through the Celery adapter, end to end: a real Celery
worker (in this process, memory:// broker, in-memory storage; no task_always_eager) runs
the calls. Fair across groups first, then across the chosen group's members.

The same fairness, key-as-a-tuple and weight scenarios on Redis (``RedisStorage``, a
``celery worker`` subprocess with one slot): ``test_celery_groups_redis.py``.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Tuple

import pytest
from celery import Celery, chain, group
from ranch_celery import lru_task
from ranch_celery.inprocess import in_process_worker
from ranch_core import BacklogFull
from ranch_core.keys import group_of

TIMEOUT = 30


def _app() -> Celery:
    app = Celery("grptest", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.005},
        task_default_queue=f"ranch-grp-{uuid.uuid4().hex[:8]}",
        worker_prefetch_multiplier=1,
    )
    return app


def _recorder(app: Celery, name: str) -> Tuple[Any, List[Any]]:
    """A fair task that records ``self.request.lru_key`` of each call it runs, in order."""
    order: List[Any] = []

    @lru_task(app, shared=False, bind=True, name=name)
    def job(self: Any, *args: Any) -> Any:
        order.append(self.request.lru_key)
        return list(args)

    return job, order


def _run_all(app: Celery, results: List[Any]) -> None:
    with in_process_worker(app, hostname=f"grp-{uuid.uuid4().hex[:6]}@test"):
        for result in results:
            result.get(timeout=TIMEOUT)


def _queue_length(app: Celery) -> int:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        return int(channel.queue_declare(app.conf.task_default_queue).message_count)


def test_a_group_of_one_member_gets_as_many_turns_as_a_group_of_twenty() -> None:
    app = _app()
    job, order = _recorder(app, "grp.share")
    # Group A: one member, 40 calls (one bulk submit). Group B: 20 members, 2 calls each.
    results = job.lru_delay_many(("A", "only"), [((index,), None) for index in range(40)])
    results += [job.lru_delay(("B", f"user_{member}"), turn) for turn in range(2) for member in range(20)]
    _run_all(app, results)
    assert len(order) == 80
    first = [group_of(key) for key in order[:40]]
    assert 18 <= first.count("A") <= 22, first
    assert all(isinstance(key, tuple) for key in order)
    # Within B, the members take turns: every member ran once before any ran twice.
    b_members = [key[1] for key in order if key[0] == "B"]
    assert sorted(b_members[:20]) == sorted(f"user_{member}" for member in range(20))

    # The same workload with flat (string) keys: A is one key among 21 and waits.
    flat_app = _app()
    flat_job, flat_order = _recorder(flat_app, "grp.flat")
    flat = flat_job.lru_delay_many("A", [((index,), None) for index in range(40)])
    flat += [flat_job.lru_delay(f"B/user_{member}", turn) for turn in range(2) for member in range(20)]
    _run_all(flat_app, flat)
    assert flat_order[:40].count("A") <= 3, flat_order[:40]


def test_a_pair_key_reaches_the_task_as_a_tuple_on_every_path() -> None:
    app = _app()
    pair = ("tenant_a", "user_42")
    seen: Dict[str, Any] = {}

    @lru_task(app, shared=False, bind=True, name="grp.trip")
    def trip(self: Any, *args: Any) -> str:
        label = str(args[-1])  # a chain's later step gets the previous result first
        seen.setdefault(label, []).append(self.request.lru_key)
        return label

    @lru_task(app, shared=False, bind=True, name="grp.retrying", max_retries=2)
    def retrying(self: Any, label: str, countdown: float) -> str:
        seen.setdefault(label, []).append(self.request.lru_key)
        if self.request.retries == 0:
            # countdown > 0: the retry waits in the broker (JSON) and is stored again when due.
            raise self.retry(countdown=countdown)
        return label

    results = [
        trip.lru_delay(pair, "delay"),
        trip.lru_delay(list(pair), "list"),  # a list of two is a pair too
        trip.lru_apply_async(pair, ("apply",), None, priority_weight=1.0, tags={"plan": "pro"}),
        trip.apply_async(("signature_options",), lru_key=pair),
        *trip.lru_delay_many(pair, [(("many",), None), (("many",), None)]),
        # The chain's second step is applied by the worker from the JSON message (a list).
        chain(trip.lru_s(pair, "chain_first"), trip.lru_s(pair, "chain_second")).apply_async(),
        # A group stores its Ranch calls with one bulk submit.
        group(trip.lru_s(pair, "group"), trip.lru_signature(pair, ("group",))).apply_async(),
        retrying.lru_delay(pair, "retry_now", 0),
        retrying.lru_delay(pair, "retry_later", 0.2),
    ]
    _run_all(app, results)
    # A chain's result is its last step's; wait for the first step too.
    expected = {
        "delay": 1,
        "list": 1,
        "apply": 1,
        "signature_options": 1,
        "many": 2,
        "chain_first": 1,
        "chain_second": 1,
        "group": 2,
        "retry_now": 2,
        "retry_later": 2,
    }
    assert {label: len(keys) for label, keys in seen.items()} == expected
    for label, keys in seen.items():
        assert all(key == pair and isinstance(key, tuple) for key in keys), (label, keys)
    assert trip.get_tagged_clients("plan") == [pair]


def test_priority_weight_of_a_group_and_of_a_member() -> None:
    # A group's weight acts among the groups: A at 0.5 gets two turns to B's one.
    app = _app()
    job, order = _recorder(app, "grp.group_weight")
    assert job.set_priority_weight("A", 0.5) is True
    results = [job.lru_delay(key, n) for n in range(30) for key in (("A", "x"), ("A", "y"), ("B", "z"))]
    _run_all(app, results)
    first = [group_of(key) for key in order[:30]]
    assert 18 <= first.count("A") <= 22, first
    a_turns = [key for key in order[:30] if key[0] == "A"]
    assert abs(a_turns.count(("A", "x")) - a_turns.count(("A", "y"))) <= 2, a_turns
    assert job.get_client_metadata("A")["weight"] == 0.5
    assert job.get_client_metadata(("A", "x"))["weight"] == 1.0

    # A member's weight acts within its group only: the groups still share equally,
    # and in A, x (0.5) gets two turns to y's one. priority_weight= on a pair sets it too.
    app = _app()
    job, order = _recorder(app, "grp.member_weight")
    assert job.set_priority_weight(("A", "x"), 0.5) is True
    results = [job.lru_delay(("A", "x"), n, priority_weight=0.5) for n in range(30)]
    results += [job.lru_delay(key, n) for n in range(30) for key in (("A", "y"), ("B", "z"))]
    _run_all(app, results)
    first = order[:42]
    groups = [group_of(key) for key in first]
    assert 19 <= groups.count("A") <= 23, first
    a_turns = [key for key in first if key[0] == "A"]
    assert 12 <= a_turns.count(("A", "x")) <= 16, a_turns
    assert job.get_client_metadata(("A", "x"))["weight"] == 0.5
    assert job.get_client_metadata("A")["weight"] == 1.0


def test_metadata_of_a_group_counts_its_members() -> None:
    app = _app()
    job, order = _recorder(app, "grp.meta")
    assert job.set_priority_weight("B", 2.0) is True
    results = [job.lru_delay(("B", "m1"), n) for n in range(3)]
    results += [job.lru_delay(("B", "m2"), n, tags={"tier": "gold"}) for n in range(2)]
    results.append(job.lru_delay("B", "own"))  # the group's own (string-key) calls
    member = job.get_client_metadata(("B", "m1"))
    assert member["lru_key"] == ("B", "m1") and member["key"] == ("B", "m1")
    assert member["pending_tasks"] == 3 and member["weight"] == 1.0
    whole = job.get_client_metadata("B")
    assert whole["lru_key"] == "B" and whole["pending_tasks"] == 6 and whole["weight"] == 2.0
    assert job.get_client_metadata(["B", "m2"])["tags"] == {"tier": "gold"}
    assert job.get_tagged_clients("tier", "gold") == [("B", "m2")]
    status = job.get_system_status()
    assert status["backlog_size"] == 6 and status["unique_lru_keys"] == 3
    _run_all(app, results)
    assert len(order) == 6
    whole = job.get_client_metadata("B")
    assert whole["pending_tasks"] == 0 and whole["served_total"] == 6
    assert job.get_client_metadata(("B", "m1"))["served_total"] == 3


def test_metadata_of_a_group_known_only_through_its_members() -> None:
    app = _app()
    job, _order = _recorder(app, "grp.meta_members_only")
    for member in ("m1", "m2"):
        job.lru_delay(("C", member), 1)
    assert job.get_client_metadata("C")["pending_tasks"] == 2


def test_per_key_controls_take_a_pair() -> None:
    app = _app()
    job, order = _recorder(app, "grp.controls")
    held, other = ("A", "held"), ("A", "other")
    assert job.pause_key(held) is True
    assert job.set_max_backlog(held, 2) is True
    assert job.set_concurrency_limit(other, 1) is True
    assert job.set_rate_limit(other, "1000/s", burst=5) is True
    job.lru_delay(held, 1)
    job.lru_delay(held, 2)
    with pytest.raises(BacklogFull):
        job.lru_delay(held, 3)
    meta = job.get_client_metadata(held)
    assert meta["paused"] is True and meta["max_backlog"] == 2 and meta["pending_tasks"] == 2
    meta = job.get_client_metadata(other)
    assert meta["concurrency_limit"] == 1 and meta["rate_limit"] == "1000/s"
    others = [job.lru_delay(other, n) for n in range(3)]
    _run_all(app, others)
    assert order == [other] * 3  # the paused member's calls wait
    assert job.get_client_metadata(held)["pending_tasks"] == 2
    assert job.purge_key(held) == 2
    assert job.resume_key(held) is True
    later = job.lru_delay(held, 4)
    _run_all(app, [later])
    assert order[-1] == held and job.get_system_status()["backlog_size"] == 0


BAD_KEYS = [
    (("a", "b", "c"), ValueError),  # three items
    (("a",), ValueError),
    ((), ValueError),
    (("a", ""), ValueError),  # empty member
    (("", "b"), ValueError),  # empty group
    (("a", 1), TypeError),  # member not a str
    ((None, "b"), TypeError),
    ({"a": "b"}, TypeError),
    (b"ab", TypeError),
]


@pytest.mark.parametrize(("key", "error"), BAD_KEYS)
def test_a_bad_pair_is_refused_naming_lru_key_and_stores_nothing(key: Any, error: type) -> None:
    app = _app()
    job, _order = _recorder(app, "grp.bad")
    attempts = [
        lambda: job.lru_delay(key, 1),
        lambda: job.lru_apply_async(key, (1,)),
        lambda: job.apply_async((1,), lru_key=key),
        lambda: job.lru_delay_many(key, [((1,), None)]),
        lambda: job.lru_s(key, 1),
        lambda: job.lru_signature(key, (1,)),
        lambda: job.set_priority_weight(key, 0.5),
        lambda: job.get_client_metadata(key),
        lambda: job.set_custom_data(key, "plan", "pro"),
        lambda: job.add_tag(key, "plan", "pro"),
        lambda: job.pause_key(key),
        lambda: job.set_concurrency_limit(key, 1),
        lambda: job.purge_key(key),
    ]
    for attempt in attempts:
        with pytest.raises(error, match="lru_key"):
            attempt()
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["unique_lru_keys"] == 0
    assert job.get_tagged_clients("plan") == []
    assert _queue_length(app) == 0  # no wake-up published
    # The same checks see a good pair.
    job.lru_delay(("a", "b"), 1)
    assert job.get_system_status()["backlog_size"] == 1
    assert _queue_length(app) == 1
