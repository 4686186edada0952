"""The batched watcher engine against the one-alert-at-a-time path, on the same real Prometheus.

Prometheus scrapes fixed gauges, so every instant query sees the same values whichever path
asks: each condition's check (state, condition, value, threshold, margin, verdict, reason)
must be the same from the batch queries as from its own two queries. Also: the number of
queries stays flat as conditions grow, a refused sub-query does not spoil its batch, and a
Prometheus that accepts connections but never answers is a breach within the watcher's deadline.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple
from datetime import datetime

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from chaoslab.halt import hold, reset_halt
from chaoslab.model import AlertState, HypothesisCheck, Sample, Series
from chaoslab.prometheus.batch import TAG_LABEL
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.probes import check_alert
from chaoslab.watch import (
    BREACH_NO_DATA,
    WATCH_IN_FLIGHT,
    Condition,
    Watcher,
    engine_for,
    evaluate,
    evaluate_stream,
)
from tests.support.prometheus import PrometheusProcess, start_prometheus, wait_for

pytestmark = pytest.mark.prometheus

GAUGES: dict[str, list[tuple[dict[str, str], float]]] = {
    "g": [
        ({"service": "a", "team": "x"}, 1.0),
        ({"service": "b", "team": "x"}, 4.0),
        ({"service": "hot", "team": "y"}, 9.0),
        ({"service": "nan", "team": "y"}, math.nan),
    ],
    "h": [({"service": "a"}, 2.0), ({"service": "b"}, 3.0), ({"service": "hot"}, 1.0)],
    "info": [({"service": "a", "owner": "ops"}, 1.0), ({"service": "hot", "owner": "dev"}, 1.0)],
}
FIRING_RULE = {"alert": "HotFiring", "expr": 'g{service="hot"} > 5', "for": "0s"}

CONDITIONS: list[tuple[str, str]] = [
    ("Quiet", 'g{service="a"} > 5'),
    ("HotFiring", 'g{service="hot"} > 5'),  # breached, and its alert fires
    ("NoData", 'g{service="missing"} > 5'),
    ("NaN", 'g{service="nan"} > 5'),
    ("NaNAndNumber", 'g{service=~"nan|b"} > 5'),
    ("WorstSeries", "g > 3"),
    ("Equality", 'up{job="equiv"} == 0'),
    ("ThresholdLeft", '5 < g{service="a"}'),
    ("AtThreshold", 'g{service="b"} >= 4'),
    ("Ratio", 'g{service="a"} / on(service) h{service="a"} > 0.4'),
    ("GroupLeft", "g * on(service) group_left(owner) info > 2"),
    ("ManyToMany", "g + on() h > 0"),  # Prometheus refuses it at evaluation time
    ("AbsentTrue", 'absent(g{service="missing"})'),
    ("AbsentFalse", 'absent(g{service="a"})'),
    ("And", 'g{service="a"} > 0 and h{service="a"} > 0'),
    ("AndEmpty", 'g{service="a"} > 0 and h{service="a"} > 10'),
    ("Unless", "g > 0 unless h > 2"),
    ("Or", 'g{service="missing"} or h{service="missing"}'),
    ("Comment", 'g{service="b"} # the gauge\n > 5'),
    ("Scalar", 'scalar(g{service="a"})'),  # not a vector: asked alone
    ("Bool", 'g{service="a"} > bool 5'),
    ("Aggregate", "sum by (team) (g) > 10"),
    ("Count", "count(g) > 3"),
    ("UsesTag", f'g{{service="a", {TAG_LABEL}=""}} > 5'),  # would clash with the tag: alone
    ("Invalid", 'g{service="a" > 5'),  # does not parse: Prometheus' own refusal is reported
    ("Quiet", 'g{service="a"} > 5'),  # the same alert twice
    ("Subquery", 'max_over_time(g{service="b"}[1m:10s]) > 3'),
]


RATIO = 'sum(g{{service="s{i}"}}) / sum(h{{service="s{i}"}}) > {threshold:g}'


class Gauges:
    """Fixed gauges, served to Prometheus by prometheus_client."""

    def __init__(self, families: Mapping[str, Sequence[tuple[dict[str, str], float]]]) -> None:
        self.families = families
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]
        self.server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)

    def collect(self) -> Iterator[Metric]:
        for name, samples in self.families.items():
            labels = sorted({k for sample_labels, _ in samples for k in sample_labels})
            family = GaugeMetricFamily(name, name, labels=labels)
            for sample_labels, value in samples:
                family.add_metric([sample_labels.get(k, "") for k in labels], value)
            yield family

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Counting:
    """The real client, counting the requests made through the port (and the most queries
    that were ever waiting for their answer at once)."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.url = client.url
        self.requests = 0
        self.queries: list[str] = []
        self.most_at_once = 0
        self._open = 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def alerts(self) -> Sequence[AlertState]:
        self._count()
        return self.client.alerts()

    def query(self, expr: str, *, at: datetime | None = None) -> Sequence[Sample]:
        self._count()
        with self._lock:
            self.queries.append(expr)
            self._open += 1
            self.most_at_once = max(self.most_at_once, self._open)
        try:
            return self.client.query(expr, at=at)
        finally:
            with self._lock:
                self._open -= 1

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: float) -> Sequence[Series]:
        self._count()
        return self.client.query_range(expr, start=start, end=end, step=step)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    workdir = tmp_path_factory.mktemp("prometheus-batch")
    gauges = Gauges(GAUGES)
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "equiv", "rules": [FIRING_RULE]}]}))
    prom = None
    try:
        prom = start_prometheus(workdir, targets={"equiv": gauges.server.server_port}, rule_files=[rules])
        with PrometheusClient(prom.url) as client:
            wait_for(lambda: client.query("h") and any(a.state == "firing" for a in client.alerts()),
                     timeout=60, what="the gauges scraped and HotFiring firing")
            # A subquery sees the gauges only at its own 10 s steps: until the first step after
            # the first scrape, it has no data, and two paths asking a moment apart could
            # straddle that step.
            wait_for(lambda: client.query('max_over_time(g{service="b"}[1m:10s])'), timeout=60,
                     what="the subquery's first step after the first scrape")
        yield prom
    finally:
        if prom is not None:
            prom.stop()
        gauges.stop()


def one_by_one(client: PrometheusClient, conditions: Sequence[Condition]) -> list[tuple[object, ...]]:
    states = client.alerts()
    return [astuple(check_alert(client, alert=c.alert, expr=c.expr, alert_states=states)) for c in conditions]


def as_check_fields(checks: Sequence[HypothesisCheck]) -> list[tuple[object, ...]]:
    return [(c.state, c.condition_true, c.value, c.threshold, c.margin, c.met, c.reason, c.no_data)
            for c in checks]


def old_fields(old: Sequence[tuple[object, ...]]) -> list[tuple[object, ...]]:
    # AlertCheck: alert, state, condition_true, value, threshold, margin, met, reason, op
    return [(None if o[1] == "unknown" else o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[2] is None)
            for o in old]


def test_batched_checks_equal_the_one_alert_path(prometheus: PrometheusProcess) -> None:
    conditions = [Condition(alert=name, expr=expr) for name, expr in CONDITIONS]
    with PrometheusClient(prometheus.url) as client:
        counting = Counting(client)
        batched = evaluate(counting, conditions)
        expected = old_fields(one_by_one(client, conditions))
    assert as_check_fields(batched) == expected
    by_name = {c.alert: c for c in batched}
    assert by_name["HotFiring"].state == "firing"
    assert by_name["NoData"].reason.startswith("no data for")
    assert "NaN" in by_name["NaN"].reason
    assert by_name["ManyToMany"].no_data  # Prometheus' refusal, as the old path reports it
    assert by_name["AbsentTrue"].condition_true is True
    assert by_name["Quiet"].met
    assert by_name["Quiet"].margin == 4.0
    # one alerts call, the batch (split in halves to isolate ManyToMany), and the alone
    # checks (Scalar, UsesTag, Invalid, ManyToMany; two queries each at most): far below 2 × 27.
    assert counting.requests <= 1 + 9 + 8


def test_an_engine_remembers_what_must_be_asked_alone(prometheus: PrometheusProcess) -> None:
    conditions = [Condition(alert=name, expr=expr) for name, expr in CONDITIONS]
    engine = engine_for(conditions)
    with PrometheusClient(prometheus.url) as client:
        counting = Counting(client)
        first = evaluate(counting, conditions, engine=engine)
        before = counting.requests
        second = evaluate(counting, conditions, engine=engine)
    assert as_check_fields(first) == as_check_fields(second)
    # Second time: alerts, one batch, and the four alone checks' queries (ManyToMany and
    # Invalid fail at their first query; Scalar and UsesTag ask expr, and UsesTag its lhs).
    assert counting.requests - before <= 1 + 1 + 1 + 1 + 1 + 2


def test_queries_stay_flat_as_conditions_grow(prometheus: PrometheusProcess) -> None:
    conditions = [
        Condition(alert=f"Svc{i}Errors", expr=RATIO.format(i=i, threshold=0.1 + i % 9 / 10))
        for i in range(1000)
    ]
    with PrometheusClient(prometheus.url) as client:
        counting = Counting(client)
        checks = evaluate(counting, conditions, engine=engine_for(conditions))
    assert counting.requests <= 10
    assert all(c.no_data is False and not c.met and c.reason.startswith("no data for") for c in checks)


def ratios(count: int) -> list[Condition]:
    """``count`` error-ratio alerts of services Prometheus has no data for."""
    return [Condition(alert=f"Svc{i}Errors", expr=RATIO.format(i=i, threshold=0.5)) for i in range(count)]


def test_the_stream_yields_every_check_once_and_as_evaluate_does(
    prometheus: PrometheusProcess,
) -> None:
    conditions = [Condition(alert=name, expr=expr) for name, expr in CONDITIONS]
    conditions += ratios(300)
    conditions.append(Condition(alert="Guard", expr="absent(up)", guard=True))
    with PrometheusClient(prometheus.url) as client, ThreadPoolExecutor(8) as pool:
        whole = evaluate(client, conditions, pool=pool)
        counting = Counting(client)
        seen: list[int] = []
        streamed: dict[int, HypothesisCheck] = {}
        for group in evaluate_stream(counting, conditions, pool=pool, in_flight=WATCH_IN_FLIGHT):
            seen.extend(i for i, _ in group)
            streamed.update(group)
    assert sorted(seen) == list(range(len(conditions)))  # each exactly once
    assert as_check_fields([streamed[i] for i in range(len(conditions))]) == as_check_fields(whole)
    batches = [q for q in counting.queries if TAG_LABEL in q]
    assert len(batches) >= 4  # the 300 alerts are spread over several batch queries
    assert counting.most_at_once <= WATCH_IN_FLIGHT + 4  # two batches, and the few asked alone


def test_the_stream_gives_a_breach_before_the_other_batches_are_asked(
    prometheus: PrometheusProcess,
) -> None:
    conditions = [Condition(alert="HotFiring", expr='g{service="hot"} > 5', target=True)]
    conditions += ratios(500)
    with PrometheusClient(prometheus.url) as client, ThreadPoolExecutor(8) as pool:
        counting = Counting(client)
        stream = evaluate_stream(counting, conditions, pool=pool, in_flight=1)
        for group in stream:
            if any(not check.met for _, check in group):
                break
        stream.close()
        asked = len([q for q in counting.queries if TAG_LABEL in q])
        planned = len(engine_for(conditions).plan())
    assert dict(group)[0].condition_true is True  # HotFiring, answered by the first batch
    assert planned >= 8
    assert asked <= 2  # the first batch, and at most the one asked while it was judged


def test_a_sub_query_carrying_the_tag_label_is_never_mistaken_for_another(
    prometheus: PrometheusProcess,
) -> None:
    conditions = [Condition(alert="Relabelled", expr=f'label_replace(g, "{TAG_LABEL}", "0", "", "") > 5'),
                  Condition(alert="Quiet", expr='g{service="a"} > 5')]
    with PrometheusClient(prometheus.url) as client:
        assert as_check_fields(evaluate(client, conditions)) == old_fields(one_by_one(client, conditions))


class Silent:
    """A TCP server that accepts connections and never answers: a hung Prometheus."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_prometheus_that_never_answers_is_a_breach_within_the_deadline() -> None:
    reset_halt()
    silent = Silent()
    conditions = [Condition(alert="Quiet", expr='g{service="a"} > 5', target=True)]
    try:
        with PrometheusClient(silent.url, timeout=60.0) as client:  # the client alone would wait a minute
            watcher = Watcher(client, conditions, interval=0.25)
            started = time.monotonic()
            with watcher:
                result = hold("60s")
            elapsed = time.monotonic() - started
    finally:
        silent.close()
        reset_halt()
    assert result["interrupted"] is True
    breach = watcher.breach
    assert breach is not None
    assert breach.kind == BREACH_NO_DATA
    assert "deadline of 1s" in breach.reason
    assert watcher.deadline_s == 1.0
    assert elapsed < 10.0  # the deadline is 1 s; ten times that catches a hang, not a slow box


def test_a_stopped_watcher_does_not_wait_for_the_evaluation_in_flight() -> None:
    reset_halt()
    silent = Silent()
    conditions = [Condition(alert="Quiet", expr='g{service="a"} > 5', target=True)]
    try:
        with PrometheusClient(silent.url, timeout=60.0) as client:
            watcher = Watcher(client, conditions, interval=2.5)  # a deadline of 10 s
            watcher.start()
            deadline = time.monotonic() + 30
            while not silent.held and time.monotonic() < deadline:  # a request is in flight
                time.sleep(0.01)
            assert silent.held
            started = time.monotonic()
            watcher.stop(wait=30.0)
            stopped_in = time.monotonic() - started
    finally:
        silent.close()
        reset_halt()
    assert watcher.deadline_s == 10.0
    assert stopped_in < 5.0  # not the 10 s deadline of the requests in flight
    assert watcher.breach is None  # what was in flight is discarded, not taken for a breach
    assert watcher.evaluations == 0
