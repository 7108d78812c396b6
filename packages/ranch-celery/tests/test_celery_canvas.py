"""Ranch signatures in Celery's canvas (issue 15): chain, group, chord, link, next to plain signatures.

Real ``celery worker`` subprocesses, a real Redis broker and Redis result
backend; ``t.step`` records ``<lru_key>:<x>`` for each run, so a test sees
which steps went through a fair backlog (a plain step records ``None``).
"""

from __future__ import annotations

import time
from typing import Any, List

import pytest
from celery import chain, chord, group
from celery.canvas import Signature
from ranch_celery_testapp import make_canvas_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def steps(rec: Any, tag: str) -> List[str]:
    return list(rec.lrange(f"steps:{tag}", 0, -1))


def count_submits(task: Any) -> List[int]:
    """Record the batch size of every ``submit_many`` of ``task``'s backlog in this process (a spy:
    the real method runs)."""
    dispatcher = task.lru_dispatcher
    sizes: List[int] = []
    original = dispatcher.submit_many

    def spy(key: str, calls: Any, **kwargs: Any) -> Any:
        calls = list(calls)
        sizes.append(len(calls))
        return original(key, calls, **kwargs)

    dispatcher.submit_many = spy
    return sizes


def test_lru_s_and_lru_signature_are_plain_signatures_carrying_the_key(redis_url) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    short = step.lru_s("tenant", 1, "tag")
    long = step.lru_signature("tenant", (1, "tag"), {}, priority_weight=0.5, time_limit=3)
    assert type(short) is Signature and type(long) is Signature
    assert short.args == (1, "tag") and short.options == {"lru_key": "tenant"}
    assert long.options == {"lru_key": "tenant", "priority_weight": 0.5, "time_limit": 3}
    # A signature survives a round trip through a message (JSON) unchanged.
    assert Signature.from_dict(dict(short)) == short
    with pytest.raises(ValueError, match="lru_key"):
        step.lru_s("", 1, "tag")
    with pytest.raises(TypeError, match="args"):
        step.lru_signature("tenant", "not-a-list")
    # Applying one stores it: nothing runs before a worker starts.
    result = short.delay()
    assert step.get_system_status()["backlog_size"] == 1
    assert result.state == "PENDING"


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads"])
def test_chain_of_ranch_steps_and_the_same_chain_of_plain_steps(redis_url, start_worker, rec, pool) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    ranch = chain(step.lru_s("a", 1, "ranch"), step.lru_s("b", "ranch"), step.lru_s("c", "ranch"))
    ranch = ranch.apply_async()
    plain = chain(step.s(1, "plain"), step.s("plain"), step.s("plain")).apply_async()
    # The first step waits in the backlog; later steps are stored by the worker that ran the previous one.
    assert step.get_system_status()["backlog_size"] == 1
    start_worker(pool=pool, concurrency=1 if pool == "solo" else 2)
    assert ranch.get(timeout=20) == plain.get(timeout=20) == 4
    assert ranch.parent.get(timeout=5) == plain.parent.get(timeout=5) == 3
    assert steps(rec, "ranch") == ["a:1", "b:2", "c:3"]
    assert steps(rec, "plain") == ["None:1", "None:2", "None:3"]


def test_ranch_steps_first_or_later_in_a_chain_of_plain_steps(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    first = (step.lru_s("a", 1, "first") | step.s("first") | step.s("first")).apply_async()
    later = (step.s(1, "later") | step.s("later") | step.lru_s("z", "later")).apply_async()
    start_worker()
    assert first.get(timeout=20) == later.get(timeout=20) == 4
    assert steps(rec, "first") == ["a:1", "None:2", "None:3"]
    assert steps(rec, "later") == ["None:1", "None:2", "z:3"]


def test_group_of_ranch_signatures_is_one_bulk_submit_and_gives_the_plain_results(
    redis_url, start_worker, rec
) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    sizes = count_submits(step)
    flood = group(step.lru_s("tenant_a", i, "flood") for i in range(200)).apply_async()
    assert sizes == [200]  # one storage step for the whole group
    assert step.get_client_metadata("tenant_a")["pending_tasks"] == 200
    single = step.lru_delay("tenant_b", 1000, "flood")
    plain = group(step.s(i, "plain") for i in range(200)).apply_async()
    start_worker()
    assert flood.get(timeout=60) == plain.get(timeout=60) == [i + 1 for i in range(200)]
    assert single.get(timeout=20) == 1001
    order = steps(rec, "flood")
    # The flood does not delay the other tenant's single call: fair order, not FIFO.
    assert order.index("tenant_b:1000") <= 2
    assert sorted(order) == sorted([f"tenant_a:{i}" for i in range(200)] + ["tenant_b:1000"])


def test_group_mixing_keys_and_plain_signatures(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    sizes = count_submits(step)
    mixed = group(
        step.lru_s("a", 1, "mixed"),
        step.s(2, "mixed"),
        step.lru_s("b", 3, "mixed"),
        step.lru_s("a", 4, "mixed"),
    ).apply_async()
    assert sorted(sizes) == [1, 2]  # one submit per key
    start_worker()
    assert mixed.get(timeout=20) == [2, 3, 4, 5]
    assert sorted(steps(rec, "mixed")) == ["None:2", "a:1", "a:4", "b:3"]


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads"])
def test_chord_with_ranch_header_and_body_and_the_same_chord_plain(
    redis_url, start_worker, rec, pool
) -> None:
    app = make_canvas_app(redis_url)
    step, total = app.tasks["t.step"], app.tasks["t.total"]
    ranch = chord((step.lru_s(f"k{i % 3}", i, "ranch") for i in range(6)), total.lru_s("sum", "ranch"))()
    plain = chord((step.s(i, "plain") for i in range(6)), total.s("plain"))()
    ranch_header_plain_body = chord([step.lru_s("h", i, "hb") for i in range(3)], total.s("hb"))()
    plain_header_ranch_body = chord([step.s(i, "bh") for i in range(3)], total.lru_s("body", "bh"))()
    worker = start_worker(pool=pool, concurrency=1 if pool == "solo" else 3)
    assert ranch.get(timeout=30) == plain.get(timeout=30) == sum(range(1, 7))
    assert ranch_header_plain_body.get(timeout=30) == plain_header_ranch_body.get(timeout=30) == 6
    assert steps(rec, "ranch")[-1] == "sum:total" and len(steps(rec, "ranch")) == 7
    assert {s.split(":")[0] for s in steps(rec, "ranch")[:-1]} == {"k0", "k1", "k2"}
    assert steps(rec, "plain")[-1] == "None:total"
    assert steps(rec, "hb")[-1] == "None:total" and steps(rec, "bh")[-1] == "body:total"
    # The Redis result backend counts the header's results: no chord_unlock task polls.
    assert "chord_unlock" not in worker.log.read_text()


def test_chain_into_a_group_and_a_chord_inside_a_chain(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step, total = app.tasks["t.step"], app.tasks["t.total"]
    fan_out = step.lru_s("a", 1, "fan") | group(step.lru_s("b", "fan"), step.lru_s("c", "fan"))
    fan_out = fan_out.apply_async()
    nested = (
        step.lru_s("a", 1, "nested")
        | chord([step.lru_s("b", "nested"), step.s("nested")], total.lru_s("c", "nested"))
        | step.lru_s("d", "nested")
    ).apply_async()
    start_worker()
    assert fan_out.get(timeout=30) == [3, 3]
    assert nested.get(timeout=30) == 7  # 1 -> 2 -> [3, 3] -> 6 -> 7
    assert sorted(steps(rec, "fan")) == ["a:1", "b:2", "c:2"]
    assert steps(rec, "nested")[0] == "a:1" and steps(rec, "nested")[-2:] == ["c:total", "d:6"]


def test_link_and_link_error_with_ranch_and_plain_callbacks(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step, fail, errback = app.tasks["t.step"], app.tasks["t.fail"], app.tasks["t.errback"]
    ranch = step.lru_apply_async("a", (1, "link"), link=step.lru_s("cb", "link"))
    plain = step.apply_async((1, "plain"), link=step.s("plain"))
    failed = fail.lru_apply_async("a", ("boom",), link_error=errback.lru_s("eb"))
    failed_plain = fail.apply_async(("boom",), link_error=errback.s())
    start_worker()
    assert ranch.get(timeout=20) == plain.get(timeout=20) == 2
    (ranch_child,) = ranch.children
    (plain_child,) = plain.children
    assert ranch_child.get(timeout=20) == plain_child.get(timeout=20) == 3
    assert steps(rec, "link") == ["a:1", "cb:2"] and steps(rec, "plain") == ["None:1", "None:2"]
    for result in (failed, failed_plain):
        with pytest.raises(ValueError, match="boom"):
            result.get(timeout=20)
    wait_for(lambda: rec.llen("errbacks") == 2, 20, "both errbacks")
    assert sorted(rec.lrange("errbacks", 0, -1)) == sorted([f"eb:{failed.id}", f"None:{failed_plain.id}"])


def test_a_ranch_call_made_inside_a_task_is_its_child(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    spawn = app.tasks["t.spawn"]
    parent = spawn.lru_delay("p", "child")
    start_worker()
    child_id = parent.get(timeout=20)
    (child,) = parent.children
    assert child.id == child_id and child.get(timeout=20) == 2
    assert steps(rec, "child") == ["child:1"]


def test_a_ranch_step_that_retries_goes_on_with_its_chain(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step, flaky = app.tasks["t.step"], app.tasks["t.flaky"]
    ranch = (step.lru_s("a", 1, "retry") | flaky.lru_s("b", "retry") | step.lru_s("c", "retry")).apply_async()
    plain = (step.s(1, "plain") | flaky.s("plain") | step.s("plain")).apply_async()
    start_worker()
    assert ranch.get(timeout=30) == plain.get(timeout=30) == 4
    assert steps(rec, "retry") == ["a:1", "b:2:try0", "b:2:try1", "c:3"]
    assert steps(rec, "plain") == ["None:1", "None:2:try0", "None:2:try1", "None:3"]


def test_immutable_ranch_signatures_ignore_the_previous_result(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    ranch = (step.lru_s("a", 1, "im") | step.lru_signature("b", (10, "im"), immutable=True)).apply_async()
    plain = (step.s(1, "im-plain") | step.si(10, "im-plain")).apply_async()
    start_worker()
    assert ranch.get(timeout=20) == plain.get(timeout=20) == 11
    assert steps(rec, "im") == ["a:1", "b:10"]


def test_an_expired_chord_header_call_fails_the_chord_as_a_plain_expired_one(redis_url, start_worker) -> None:
    app = make_canvas_app(redis_url)
    step, total = app.tasks["t.step"], app.tasks["t.total"]
    header = [step.lru_s("k", 1, "x"), step.lru_s("k", 2, "x").set(expires=0.2)]
    ranch = chord(header, total.lru_s("k", "x"))()
    plain = chord([step.s(1, "y"), step.s(2, "y").set(expires=0.2)], total.s("y"))()
    time.sleep(0.5)
    worker = start_worker()
    for result in (ranch, plain):
        meta = lambda result=result: app.backend.get_task_meta(result.id)  # noqa: E731
        wait_for(lambda meta=meta: meta()["status"] == "FAILURE", 30, "the chord body to fail", worker)
        assert "Dependency" in str(meta()["result"]) and "expired" in str(meta()["result"]).lower()


@pytest.mark.parametrize("ranch_replacement", [False, True], ids=["plain-replacement", "ranch-replacement"])
def test_task_replace_in_a_ranch_call_and_in_a_plain_call(
    redis_url, start_worker, rec, ranch_replacement
) -> None:
    app = make_canvas_app(redis_url)
    replacer, step = app.tasks["t.replacer"], app.tasks["t.step"]
    ranch = (replacer.lru_s("a", 1, "ranch", ranch_replacement) | step.lru_s("b", "ranch")).apply_async()
    plain = (replacer.s(1, "plain", ranch_replacement) | step.s("plain")).apply_async()
    start_worker()
    assert ranch.get(timeout=20) == plain.get(timeout=20) == 3
    key = "replaced" if ranch_replacement else "None"
    assert steps(rec, "ranch") == [f"{key}:1", "b:2"]
    assert steps(rec, "plain") == [f"{key}:1", "None:2"]


def test_a_group_with_one_expiry_moment_is_still_one_bulk_submit(redis_url) -> None:
    import datetime

    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    sizes = count_submits(step)
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    results = [
        group(step.lru_s("k", i, "x").set(expires=moment) for i in range(50)).apply_async(),
        group(step.lru_s("k", i, "x").set(expires=60) for i in range(50)).apply_async(),
    ]
    assert sizes == [50, 50]
    assert step.get_client_metadata("k")["pending_tasks"] == 100
    forget(results)


def test_expiries_across_a_tenth_of_a_second_boundary_are_one_bulk_submit(redis_url) -> None:
    """Expiries 0.06 s apart that round to different tenths (299.95 and 300.01 s
    away) are still one step; 0.5 s apart, two; the sooner a step's calls
    asked for is the one they get."""
    import datetime

    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    sizes = count_submits(step)
    now = datetime.datetime.now(datetime.timezone.utc)
    near = [now + datetime.timedelta(seconds=s) for s in (299.95, 300.01, 299.96, 300.0)]
    far = now + datetime.timedelta(seconds=300.5)
    results = [
        group(step.lru_s("k", i, "x").set(expires=m) for i, m in enumerate([*near, far, far])).apply_async()
    ]
    assert sizes == [4, 2]
    meta = step.get_client_metadata("k")
    assert meta["pending_tasks"] == 6
    forget(results)


def forget(results: Any) -> None:
    """Drop results no worker will complete while Redis still runs (their ``__del__`` unsubscribes)."""
    import gc

    del results[:]
    gc.collect()


def test_chord_results_keep_the_header_order_when_fair_order_differs(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step, kw = app.tasks["t.step"], app.tasks["t.kw"]
    header = [step.lru_s("a", i, "order") for i in range(3)]
    header += [step.lru_s("b", i, "order") for i in range(10, 13)]
    ranch = chord(header, kw.lru_s("body"))()
    plain = chord([step.s(i, "plain") for i in (0, 1, 2, 10, 11, 12)], kw.s())()
    start_worker()
    expected = [[1, 2, 3, 11, 12, 13], 0, None]
    assert ranch.get(timeout=30) == plain.get(timeout=30) == expected
    # The backlog ran them in fair order (keys taking turns), not in header order.
    assert steps(rec, "order") == ["a:0", "b:10", "a:1", "b:11", "a:2", "b:12"]


def test_chord_whose_header_is_chains_of_ranch_steps(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step, total = app.tasks["t.step"], app.tasks["t.total"]
    ranch = chord(
        [step.lru_s(f"k{i}", i, "chains") | step.lru_s(f"k{i}", "chains") for i in range(3)],
        total.lru_s("sum", "chains"),
    )()
    plain = chord([step.s(i, "plain") | step.s("plain") for i in range(3)], total.s("plain"))()
    start_worker()
    assert ranch.get(timeout=30) == plain.get(timeout=30) == 2 + 3 + 4
    assert len(steps(rec, "chains")) == 7 and steps(rec, "chains")[-1] == "sum:total"
