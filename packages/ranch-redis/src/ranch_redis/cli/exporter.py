"""``ranch metrics --port 9808``: a Prometheus exporter of every registered backlog.

Each scrape runs one ``metrics.lua`` step per backlog (its counters, its
wait histogram, and its top ``--top`` keys by waiting calls), so the number
of series is bounded by backlogs x top keys, whatever the number of keys.

Series (``backlog`` label): ``ranch_waiting_calls``, ``ranch_running_calls``,
``ranch_active_keys`` (gauges), ``ranch_served_total``,
``ranch_expired_total`` (counters), ``ranch_wait_seconds`` (histogram: stored
-> started). Per key (``backlog`` and ``key`` labels), for the top keys only:
``ranch_key_waiting_calls``, ``ranch_key_running_calls``,
``ranch_key_served_total``, ``ranch_key_expired_total``,
``ranch_key_retried_total``, ``ranch_key_wait_seconds``,
``ranch_key_failed_total``, ``ranch_key_run_seconds`` (histogram: started ->
finished) and ``ranch_key_run_estimate_seconds`` (the moving average
``cost="runtime"`` charges; no sample until a call of the key was measured).
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Iterator, List, Optional, Tuple

from ranch_core.keys import key_text

from ranch_redis.cli.access import token_matches
from ranch_redis.cli.connect import Connection
from ranch_redis.cli.errors import UsageError
from ranch_redis.metrics import BacklogMetrics, WaitHistogram

logger = logging.getLogger("ranch_redis")

#: The environment variable of the exporter's token.
TOKEN_ENV = "RANCH_METRICS_TOKEN"  # noqa: S105 - the name of a variable, not a token


def prometheus() -> Any:
    """The ``prometheus_client`` module; a :class:`UsageError` naming the extra if it is missing."""
    try:
        import prometheus_client.core
    except ImportError:
        raise UsageError(
            "ranch metrics needs prometheus_client: pip install 'ranch-redis[metrics]'"
        ) from None
    return prometheus_client


def buckets(hist: WaitHistogram) -> List[Tuple[str, float]]:
    """Cumulative buckets as ``prometheus_client`` takes them (``+Inf`` last)."""
    return [("+Inf" if bound == float("inf") else repr(bound), float(n)) for bound, n in hist.cumulative()]


class RanchCollector:
    """A ``prometheus_client`` collector reading every registered backlog at each scrape."""

    def __init__(self, connection: Connection, top: int) -> None:
        self.connection = connection
        self.top = top

    def read(self) -> List[BacklogMetrics]:
        """The metrics of every registered backlog (one step each)."""
        return [self.connection.storage(name).metrics(self.top) for name in self.connection.backlogs()]

    def collect(self) -> Iterator[Any]:
        """The metric families (``prometheus_client``'s collector protocol)."""
        core = prometheus().core
        backlogs = self.read()
        per_backlog = [([m.backlog], m) for m in backlogs]
        yield from families(core, BACKLOG_SERIES, ["backlog"], per_backlog)
        per_key = [([m.backlog, key_text(k.key)], k) for m in backlogs for k in m.top_keys]
        yield from families(core, KEY_SERIES, ["backlog", "key"], per_key)


#: A series: its kind (gauge, counter, histogram), name, help text and the field it reads.
Series = Tuple[str, str, str, str]

#: The series of a backlog.
BACKLOG_SERIES: Tuple[Series, ...] = (
    ("gauge", "ranch_waiting_calls", "Calls waiting (not leased) in the backlog", "waiting"),
    ("gauge", "ranch_running_calls", "Calls leased (running) now", "running"),
    ("gauge", "ranch_active_keys", "Keys with waiting calls (selectable or parked)", "active_keys"),
    ("counter", "ranch_served", "Calls dispatched", "served"),
    ("counter", "ranch_expired", "Calls dropped at their expiry", "expired"),
    ("histogram", "ranch_wait_seconds", "Wait from stored to started", "wait"),
    ("counter", "ranch_failed", "Calls that ended in failure", "failed"),
    ("histogram", "ranch_run_seconds", "Run time from started to finished", "run"),
)

#: The series of each of a backlog's top keys by waiting calls.
KEY_SERIES: Tuple[Series, ...] = (
    ("gauge", "ranch_key_waiting_calls", "Calls waiting, top keys by waiting", "waiting"),
    ("gauge", "ranch_key_running_calls", "Calls running, top keys by waiting", "running"),
    ("counter", "ranch_key_served", "Calls dispatched, top keys by waiting", "served"),
    ("counter", "ranch_key_expired", "Calls expired, top keys by waiting", "expired"),
    ("counter", "ranch_key_retried", "Calls retried, top keys by waiting", "retried"),
    ("histogram", "ranch_key_wait_seconds", "Wait from stored to started, top keys by waiting", "wait"),
    ("counter", "ranch_key_failed", "Calls failed, top keys by waiting", "failed"),
    ("histogram", "ranch_key_run_seconds", "Run time from started to finished, top keys by waiting", "run"),
    (
        "gauge",
        "ranch_key_run_estimate_seconds",
        "Moving average of run times, charged at dispatch with cost=runtime; top keys by waiting",
        "run_estimate",
    ),
)

KINDS = {"gauge": "GaugeMetricFamily", "counter": "CounterMetricFamily", "histogram": "HistogramMetricFamily"}


def families(
    core: Any, series: Iterable[Series], labels: List[str], rows: List[Tuple[List[str], Any]]
) -> Iterator[Any]:
    """One metric family per series, a sample per row (label values, the object read)."""
    for kind, name, text, field in series:
        family = getattr(core, KINDS[kind])(name, text, labels=labels)
        for values, source in rows:
            value = getattr(source, field)
            if value is None:
                continue  # nothing measured yet (a run estimate): no sample
            if kind == "histogram":
                family.add_metric(values, buckets(value), value.total)
            else:
                family.add_metric(values, value)
        yield family


def serve(
    connection: Connection, host: str, port: int, top: int, token: Optional[str]
) -> ThreadingHTTPServer:
    """An HTTP server answering ``GET /metrics`` (with the token, if one is set); not started."""
    client = prometheus()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(RanchCollector(connection, top))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            if not token_matches(token, self.headers.get("Authorization")):
                self.send_error(401, "a bearer token is required")
                return
            try:
                body = client.generate_latest(registry)
            except Exception as exc:  # noqa: BLE001 - Redis down: the scrape fails, the exporter lives
                logger.error("ranch: scrape failed: %s", exc)
                self.send_error(503, "Redis unavailable")
                return
            self.send_response(200)
            self.send_header("Content-Type", client.CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("ranch metrics: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)
