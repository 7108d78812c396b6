"""Calls are encoded with Dramatiq's own encoder: the actor receives what ``.send`` delivers.

Each test sends the same arguments with ``.send`` and ``.lru_send`` through a
real worker and compares what the actor received.
"""

from __future__ import annotations

import datetime
import json
import math
import uuid
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Tuple

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.encoder import JSONEncoder, MessageData, PickleEncoder
from dramatiq.middleware import CurrentMessage
from ranch_dramatiq import EncoderSerializer, Ranch, lru_actor

Received = Dict[str, Tuple[Tuple[Any, ...], Dict[str, Any]]]


class LenientJSON(JSONEncoder):
    """An application's own encoder: JSON that writes unknown objects as strings."""

    def encode(self, data: MessageData) -> bytes:
        return json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")


@pytest.fixture
def encoder() -> Iterator[Any]:
    """Set the global encoder for one test (``encoder(PickleEncoder())``); restored afterwards."""
    previous = dramatiq.get_encoder()
    yield dramatiq.set_encoder
    dramatiq.set_encoder(previous)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=5))
    yield broker
    broker.close()


def declare_recorder(broker: StubBroker) -> Tuple[Any, Received]:
    received: Received = {}

    @lru_actor(broker=broker)
    def record(*args: Any, **kwargs: Any) -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None
        received[message.message_id] = (args, kwargs)

    return record, received


def both_ways(broker: StubBroker, run_worker: Any, *args: Any, **kwargs: Any) -> List[Any]:
    """What the actor received from ``.send(*args, **kwargs)`` and from ``.lru_send``."""
    record, received = declare_recorder(broker)
    plain = record.send(*args, **kwargs)
    fair = record.lru_send("k", *args, **kwargs)
    with run_worker(broker):
        broker.join("default")
    return [received[plain.message_id], received[fair.message_id]]


def test_json_round_trip_is_the_same_as_send(broker: StubBroker, run_worker: Any) -> None:
    plain, fair = both_ways(
        broker, run_worker, (1, 2), {"nested": (3, [4])}, {7: "int key"}, math.inf, None, label=("a", "b")
    )
    assert repr(fair) == repr(plain)  # repr: inf and the int key made a str by JSON, tuples made lists
    assert fair == ((([1, 2], {"nested": [3, [4]]}, {"7": "int key"}, math.inf, None), {"label": ["a", "b"]}))


def test_an_argument_json_cannot_encode_is_named_and_nothing_is_stored(broker: StubBroker) -> None:
    record, _ = declare_recorder(broker)
    when = datetime.datetime(2024, 5, 1, 12, 30)
    with pytest.raises(TypeError, match=r"argument 2 \(args\[1\]\) of type datetime .*JSONEncoder"):
        record.lru_send("k", 1, when)
    with pytest.raises(TypeError, match=r"keyword 'price' of type Decimal"):
        record.lru_send("k", 1, price=Decimal("1.5"))
    with pytest.raises(TypeError, match=r"message option 'throws' of type type"):
        record.lru_send_with_options("k", args=(1,), throws=KeyError)  # a class: pickle only
    with pytest.raises(TypeError):
        record.send(1, when)  # plain Dramatiq refuses it too
    status = record.get_system_status()
    assert status["backlog_size"] == 0 and status["unique_lru_keys"] == 0
    assert broker.queues["default"].qsize() == 0


def test_pickle_encoder_set_after_the_actor_is_declared(
    broker: StubBroker, run_worker: Any, encoder: Any
) -> None:
    record, received = declare_recorder(broker)  # the storage exists before the encoder is chosen
    encoder(PickleEncoder())
    args = (datetime.datetime(2024, 5, 1, 12, 30), Decimal("1.5"), uuid.UUID(int=7), {1, 2}, (3, 4))
    plain = record.send(*args, when=datetime.date(2024, 1, 2))
    fair = record.lru_send("k", *args, when=datetime.date(2024, 1, 2))
    with run_worker(broker):
        broker.join("default")
    assert received[fair.message_id] == received[plain.message_id]
    assert received[fair.message_id] == (args, {"when": datetime.date(2024, 1, 2)})
    with pytest.raises(TypeError, match=r"keyword 'fn' of type function .*PickleEncoder"):
        record.lru_send("k", fn=lambda: None)
    assert record.get_system_status()["backlog_size"] == 0


def test_an_applications_own_encoder(broker: StubBroker, run_worker: Any, encoder: Any) -> None:
    encoder(LenientJSON())
    plain, fair = both_ways(broker, run_worker, datetime.date(2024, 1, 2), uuid.UUID(int=1))
    assert fair == plain == (("2024-01-02", "00000000-0000-0000-0000-000000000001"), {})


def test_a_serializer_with_a_fixed_encoder() -> None:
    serializer = EncoderSerializer(PickleEncoder())
    assert serializer.loads(serializer.dumps({"args": [{1, 2}]})) == {"args": [{1, 2}]}
    with pytest.raises(TypeError, match=r"the call cannot be encoded by Dramatiq's PickleEncoder"):
        serializer.dumps(lambda: None)  # not a call: no argument to name
    assert isinstance(serializer.encoder, PickleEncoder)


def test_the_default_json_encoding_writes_the_bytes_dramatiq_writes() -> None:
    # EncoderSerializer keeps one compact json encoder for Dramatiq's own JSONEncoder (not
    # for subclasses, see LenientJSON above): the bytes must be the ones JSONEncoder writes.
    serializer = EncoderSerializer()
    values: List[Any] = [
        {"args": [1, 2.5, None, True, "é\u2028\U0001f600", math.inf, -math.inf], "kwargs": {"k": [{"n": 1}]}},
        {"args": [], "kwargs": {}, "options": {"message_options": {"max_retries": 3}}, "retries": 0},
        {"args": [{7: "int key"}, (1, 2)]},
    ]
    for value in values:
        assert serializer.dumps(value) == JSONEncoder().encode(value)
    nan = serializer.loads(serializer.dumps({"args": [math.nan]}))["args"][0]
    assert math.isnan(nan)
