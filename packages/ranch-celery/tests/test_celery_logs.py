"""Worker logs read like plain Celery's: one outcome line per call, the wake-ups at DEBUG (issue 9, bug 6)."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from ranch_celery import WAKE_UP_TASK
from ranch_celery.logs import InternalTaskLogFilter, install_log_filter
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_info_log_has_one_outcome_line_per_call_naming_the_users_task(redis_url, start_worker, pool) -> None:
    app = make_app(redis_url)
    ok = app.tasks["t.add"].lru_delay("a", 1, 2)
    bad = app.tasks["t.fail"].lru_delay("b", "no luck")
    plain = app.tasks["t.add"].delay(3, 4)
    assert re.fullmatch(UUID, ok.id) and re.fullmatch(UUID, bad.id)  # dashed, as Celery makes them
    worker = start_worker(pool=pool)
    assert ok.get(timeout=20) == 3 and plain.get(timeout=20) == 7
    with pytest.raises(ValueError):
        bad.get(timeout=20)

    def outcome_lines() -> int:
        text = worker.log.read_text()
        return text.count("succeeded in") + text.count("raised unexpected")

    wait_for(lambda: outcome_lines() >= 3, 10, "three outcome lines", worker)
    log = worker.log.read_text()
    assert len(re.findall(rf"Task t\.add\[{ok.id}\] succeeded in [0-9.]+s: 3", log)) == 1, log
    assert len(re.findall(rf"Task t\.fail\[{bad.id}\] raised unexpected: ValueError\('no luck'\)", log)) == 1
    assert len(re.findall(rf"Task t\.add\[{plain.id}\] succeeded in", log)) == 1  # plain Celery, unchanged
    # The [tasks] banner lists the internal tasks; no line is about a wake-up message.
    assert not re.search(r"Task ranch_celery\.\w+\[", log), log
    assert len(re.findall(r"succeeded in", log)) == 2


def test_internal_lines_go_to_debug_and_others_stay() -> None:
    install_log_filter()
    install_log_filter()  # once per logger, however often it is called
    trace = logging.getLogger("celery.app.trace")
    assert sum(isinstance(f, InternalTaskLogFilter) for f in trace.filters) == 1
    records = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    trace.addHandler(handler)
    old_level = trace.level
    try:
        task_id = str(uuid.uuid4())
        line = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
        wake = {"name": WAKE_UP_TASK, "id": task_id, "runtime": 0.1, "return_value": None}
        user = {"name": "shop.process", "id": task_id, "runtime": 0.1, "return_value": 1}
        trace.setLevel(logging.INFO)
        trace.info(line, wake, extra={"data": wake})
        trace.info(line, user, extra={"data": user})
        trace.error("Task %(name)s[%(id)s] failed", wake)
        assert [(r.levelno, r.getMessage().split("[")[0]) for r in records] == [
            (logging.INFO, "Task shop.process"),
            (logging.ERROR, f"Task {WAKE_UP_TASK}"),
        ]
        records.clear()
        trace.setLevel(logging.DEBUG)
        trace.info(line, wake, extra={"data": wake})
        assert [(r.levelname, r.getMessage().split("[")[0]) for r in records] == [
            ("DEBUG", f"Task {WAKE_UP_TASK}")
        ]
    finally:
        trace.removeHandler(handler)
        trace.setLevel(old_level)
