"""Two-level keys ``(group, member)`` through the Dramatiq adapter, end to end: a real
``dramatiq.Worker`` (StubBroker, in-memory storage, this process) runs the calls. Fair
across groups first, then across the chosen group's members.

On Redis: these tests take the in-memory storage only until branch ``redis-groups``
lands (the Redis storages refuse pairs with a ``TypeError`` until then); the fairness,
weight and metadata tests are the ones to run on Redis too (RedisBroker, real workers).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Tuple

import dramatiq
import pytest
from dramatiq import group, pipeline
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend
from ranch_core import BacklogFull
from ranch_core.keys import group_of
from ranch_dramatiq import LRUActor, Ranch, current_key, lru_actor

TIMEOUT = 20.0


@pytest.fixture
def stub() -> Iterator[Tuple[StubBroker, StubBackend]]:
    broker = StubBroker()
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=5))
    previous = dramatiq.get_broker() if dramatiq.broker.global_broker is not None else None
    dramatiq.set_broker(broker)
    yield broker, backend
    broker.close()
    if previous is not None:
        dramatiq.set_broker(previous)


def _recorder(name: str, queue: str) -> Tuple[LRUActor, List[Any]]:
    """A fair actor that records :func:`current_key` of each call it runs, in order."""
    order: List[Any] = []

    @lru_actor(actor_name=name, queue_name=queue, max_retries=0)
    def job(*args: Any) -> None:
        order.append(current_key())

    return job, order


def _run_until(broker: StubBroker, run_worker: Any, done: Any) -> None:
    with run_worker(broker, threads=1):
        deadline = time.monotonic() + TIMEOUT
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert done(), "the worker did not run every call in time"


def _queue_size(broker: StubBroker, queue: str) -> int:
    if queue not in broker.queues:
        return 0
    return broker.queues[queue].qsize() + broker.queues[queue + ".DQ"].qsize()


def test_a_group_of_one_member_gets_as_many_turns_as_a_group_of_twenty(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    job, order = _recorder("grp_share", "grp_share")
    # Group A: one member, 40 calls (one bulk submit). Group B: 20 members, 2 calls each.
    job.lru_send_many(("A", "only"), [((index,), None) for index in range(40)])
    for turn in range(2):
        for member in range(20):
            job.lru_send(("B", f"user_{member}"), turn)
    _run_until(broker, run_worker, lambda: len(order) == 80)
    first = [group_of(key) for key in order[:40]]
    assert 18 <= first.count("A") <= 22, first
    assert all(isinstance(key, tuple) for key in order)
    # Within B, the members take turns: every member ran once before any ran twice.
    b_members = [key[1] for key in order if key[0] == "B"]
    assert sorted(b_members[:20]) == sorted(f"user_{member}" for member in range(20))


def test_the_same_workload_on_flat_keys_leaves_the_one_member_group_waiting(
    stub: Any, run_worker: Any
) -> None:
    # (A broker and worker of its own: on dramatiq 1.18 a second worker started in one
    # test on a new queue of the same broker waited seconds for wake-ups.)
    broker, _backend = stub
    # The same workload with flat (string) keys: A is one key among 21 and waits.
    flat_job, flat_order = _recorder("grp_flat", "grp_flat")
    flat_job.lru_send_many("A", [((index,), None) for index in range(40)])
    for turn in range(2):
        for member in range(20):
            flat_job.lru_send(f"B/user_{member}", turn)
    _run_until(broker, run_worker, lambda: len(flat_order) == 80)
    assert flat_order[:40].count("A") <= 3, flat_order[:40]


def test_a_pair_key_reaches_the_actor_as_a_tuple_on_every_path(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    pair = ("tenant_a", "user_42")
    seen: Dict[str, List[Any]] = {}
    attempts: Dict[str, int] = {}

    @lru_actor(actor_name="grp_trip", queue_name="grp_trip", max_retries=0, store_results=True)
    def trip(*args: Any) -> str:
        label = str(args[0])  # a pipeline's later step gets the previous result last
        seen.setdefault(label, []).append(current_key())
        return label

    @lru_actor(actor_name="grp_retrying", queue_name="grp_trip", max_retries=2, min_backoff=1, max_backoff=1)
    def retrying(label: str) -> None:
        seen.setdefault(label, []).append(current_key())
        attempts[label] = attempts.get(label, 0) + 1
        if attempts[label] == 1:
            # Retries re-enqueues the call after its backoff (1 ms): the retry waits in the
            # broker's delay queue (JSON) and goes back into its key's backlog when due.
            raise RuntimeError("once")

    @lru_actor(actor_name="grp_argument", queue_name="grp_trip", max_retries=0)
    def argument(key: Any) -> None:
        # An argument is encoded as Dramatiq encodes arguments (JSON: a tuple arrives as a
        # list, as with send()); the call's key itself is current_key(), a tuple.
        seen.setdefault("argument", []).append(current_key())
        seen.setdefault("argument_value", []).append(key)

    sent = trip.lru_send(pair, "send")
    trip.lru_send(list(pair), "list")  # a list of two is a pair too
    trip.lru_send_with_options(pair, ("with_options",), priority_weight=1.0, tags={"plan": "pro"})
    trip.lru_send_with_options(pair, ("delayed",), delay=50)
    trip.lru_send_many(pair, [(("many",), None), (("many",), None)])
    broker.enqueue(trip.lru_message(pair, "message"))
    trip.send_with_options(args=("send_options",), lru_key=pair)
    # The pipeline's second step is enqueued by the worker from the encoded message (a list).
    pipeline([trip.lru_message(pair, "pipe_first"), trip.lru_message(pair, "pipe_second")]).run()
    # A group stores its Ranch messages with one bulk submit.
    group([trip.lru_message(pair, "group"), trip.lru_message_with_options(pair, ("group",))]).run()
    retrying.lru_send(pair, "retry")
    argument.lru_send(pair, pair)
    expected = {
        "send": 1,
        "list": 1,
        "with_options": 1,
        "delayed": 1,
        "many": 2,
        "message": 1,
        "send_options": 1,
        "pipe_first": 1,
        "pipe_second": 1,
        "group": 2,
        "retry": 2,
        "argument": 1,
        "argument_value": 1,
    }

    def counts() -> Dict[str, int]:
        return {label: len(keys) for label, keys in seen.items()}

    _run_until(broker, run_worker, lambda: counts() == expected)
    assert seen.pop("argument_value") == [list(pair)]
    for label, keys in seen.items():
        assert all(key == pair and isinstance(key, tuple) for key in keys), (label, keys)
    assert sent.get_result(backend=backend, block=True, timeout=int(TIMEOUT * 1000)) == "send"
    assert current_key() is None  # outside a Ranch call
    assert trip.get_tagged_clients("plan") == [pair]


def test_priority_weight_of_a_group_acts_among_the_groups(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    # A group's weight acts among the groups: A at 0.5 gets two turns to B's one.
    job, order = _recorder("grp_group_weight", "grp_group_weight")
    assert job.set_priority_weight("A", 0.5) is True
    for n in range(30):
        for key in (("A", "x"), ("A", "y"), ("B", "z")):
            job.lru_send(key, n)
    _run_until(broker, run_worker, lambda: len(order) == 90)
    first = [group_of(key) for key in order[:30]]
    assert 18 <= first.count("A") <= 22, first
    a_turns = [key for key in order[:30] if key[0] == "A"]
    assert abs(a_turns.count(("A", "x")) - a_turns.count(("A", "y"))) <= 2, a_turns
    assert job.get_client_metadata("A")["weight"] == 0.5
    assert job.get_client_metadata(("A", "x"))["weight"] == 1.0


def test_priority_weight_of_a_member_acts_within_its_group(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    # A member's weight acts within its group only: the groups still share equally,
    # and in A, x (0.5) gets two turns to y's one. priority_weight= on a pair sets it too.
    job, order = _recorder("grp_member_weight", "grp_member_weight")
    assert job.set_priority_weight(("A", "x"), 0.5) is True
    for n in range(30):
        job.lru_send(("A", "x"), n, priority_weight=0.5)
    for n in range(30):
        for key in (("A", "y"), ("B", "z")):
            job.lru_send(key, n)
    _run_until(broker, run_worker, lambda: len(order) == 90)
    first = order[:42]
    groups = [group_of(key) for key in first]
    assert 19 <= groups.count("A") <= 23, first
    a_turns = [key for key in first if key[0] == "A"]
    assert 12 <= a_turns.count(("A", "x")) <= 16, a_turns
    assert job.get_client_metadata(("A", "x"))["weight"] == 0.5
    assert job.get_client_metadata("A")["weight"] == 1.0


def test_metadata_of_a_group_counts_its_members(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    job, order = _recorder("grp_meta", "grp_meta")
    assert job.set_priority_weight("B", 2.0) is True
    for n in range(3):
        job.lru_send(("B", "m1"), n)
    for n in range(2):
        job.lru_send(("B", "m2"), n, tags={"tier": "gold"})
    job.lru_send("B", "own")  # the group's own (string-key) calls
    member = job.get_client_metadata(("B", "m1"))
    assert member["lru_key"] == ("B", "m1") and member["key"] == ("B", "m1")
    assert member["pending_tasks"] == 3 and member["weight"] == 1.0
    whole = job.get_client_metadata("B")
    assert whole["lru_key"] == "B" and whole["pending_tasks"] == 6 and whole["weight"] == 2.0
    assert job.get_client_metadata(["B", "m2"])["tags"] == {"tier": "gold"}
    assert job.get_tagged_clients("tier", "gold") == [("B", "m2")]
    status = job.get_system_status()
    assert status["backlog_size"] == 6 and status["unique_lru_keys"] == 3
    _run_until(broker, run_worker, lambda: len(order) == 6)
    whole = job.get_client_metadata("B")
    assert whole["pending_tasks"] == 0 and whole["served_total"] == 6
    assert job.get_client_metadata(("B", "m1"))["served_total"] == 3


def test_metadata_of_a_group_known_only_through_its_members(stub: Any) -> None:
    job, _order = _recorder("grp_meta_members_only", "grp_meta_members_only")
    for member in ("m1", "m2"):
        job.lru_send(("C", member), 1)
    assert job.get_client_metadata("C")["pending_tasks"] == 2


def test_per_key_controls_take_a_pair(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    job, order = _recorder("grp_controls", "grp_controls")
    held, other = ("A", "held"), ("A", "other")
    assert job.pause_key(held) is True
    assert job.set_max_backlog(held, 2) is True
    assert job.set_concurrency_limit(other, 1) is True
    assert job.set_rate_limit(other, "1000/s", burst=5) is True
    job.lru_send(held, 1)
    job.lru_send(held, 2)
    with pytest.raises(BacklogFull):
        job.lru_send(held, 3)
    meta = job.get_client_metadata(held)
    assert meta["paused"] is True and meta["max_backlog"] == 2 and meta["pending_tasks"] == 2
    meta = job.get_client_metadata(other)
    assert meta["concurrency_limit"] == 1 and meta["rate_limit"] == "1000/s"
    for n in range(3):
        job.lru_send(other, n)
    _run_until(broker, run_worker, lambda: len(order) == 3)
    assert order == [other] * 3  # the paused member's calls wait
    assert job.get_client_metadata(held)["pending_tasks"] == 2
    assert job.purge_key(held) == 2
    assert job.resume_key(held) is True
    job.lru_send(held, 4)
    _run_until(broker, run_worker, lambda: len(order) == 4)
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
def test_a_bad_pair_is_refused_naming_lru_key_and_stores_nothing(stub: Any, key: Any, error: type) -> None:
    broker, _backend = stub
    job, _order = _recorder("grp_bad", "grp_bad")
    attempts = [
        lambda: job.lru_send(key, 1),
        lambda: job.lru_send_with_options(key, (1,)),
        lambda: job.lru_send_many(key, [((1,), None)]),
        lambda: job.lru_message(key, 1),
        lambda: job.lru_message_with_options(key, (1,)),
        lambda: job.send_with_options(args=(1,), lru_key=key),
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
    assert _queue_size(broker, "grp_bad") == 0  # no wake-up published
    # The same checks see a good pair.
    job.lru_send(("a", "b"), 1)
    assert job.get_system_status()["backlog_size"] == 1
    assert _queue_size(broker, "grp_bad") == 1
