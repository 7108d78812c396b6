"""Arguments plain Celery accepts work with lru_delay, and arrive as .delay delivers them (issue 9, bug 4)."""

from __future__ import annotations

import datetime
import math
import uuid
from decimal import Decimal

import pytest
from celery import Celery
from ranch_celery import SerializerType, lru_task
from ranch_celery.codec import KombuJSONSerializer
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

UTC = datetime.timezone.utc
ARGS = (
    datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    Decimal("1.5"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    datetime.date(2026, 3, 4),
    datetime.time(12, 30),
    b"raw bytes",
    "\u00e9t\u00e9",
    (1, 2),
    math.inf,
)
KWARGS = {
    "when": datetime.datetime(2026, 5, 6, 7, 8, 9),
    "amount": Decimal("-0.01"),
    "nested": {"id": ARGS[2]},
}


@pytest.mark.redis
@pytest.mark.slow
def test_lru_delay_delivers_what_delay_delivers(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    echo = app.tasks["t.echo_repr"]
    plain = echo.delay("plain", *ARGS, **KWARGS)
    fair = echo.lru_delay("tenant", "fair", *ARGS, **KWARGS)
    worker = start_worker()
    assert plain.get(timeout=20) == "plain"
    assert fair.get(timeout=20) == "fair"
    wait_for(lambda: rec.llen("repr:fair") == 1, 10, "the fair call's record", worker)
    delivered = rec.lrange("repr:plain", 0, -1)
    assert rec.lrange("repr:fair", 0, -1) == delivered
    assert "datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)" in delivered[0]
    assert "Decimal('1.5')" in delivered[0] and "UUID('12345678-1234-5678-1234-567812345678')" in delivered[0]


def test_kombu_json_round_trips_celerys_extra_types() -> None:
    codec = KombuJSONSerializer()
    payload = {"args": list(ARGS), "kwargs": KWARGS}
    decoded = codec.loads(codec.dumps(payload))
    assert decoded["args"][:6] == list(ARGS[:6])
    assert decoded["kwargs"] == KWARGS
    with pytest.raises(TypeError, match="kombu"):
        codec.dumps({"x": object()})


def test_pickle_serializer_by_name_and_its_errors_name_the_argument() -> None:
    app = Celery("pickled", broker="memory://", set_as_current=False)

    @lru_task(app, shared=False, config={"serializer": SerializerType.PICKLE})
    def job(*args: object, **kwargs: object) -> None: ...

    job.lru_delay("k", {1, 2}, when=datetime.date(2026, 1, 1))  # pickle takes sets
    assert job.get_system_status()["backlog_size"] == 1
    with pytest.raises(TypeError, match=r"argument 2 \(args\[1\]\) of type function"):
        job.lru_delay("k", 1, lambda: None)
    with pytest.raises(TypeError, match="keyword 'fn' of type function"):
        job.lru_delay("k", fn=lambda: None)
    assert job.get_system_status()["backlog_size"] == 1
