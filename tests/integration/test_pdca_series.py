"""Check against a real Prometheus: the SLI series, which conditions held, the alerts'
pending and firing history, and detection, around a burst of errors on a simulated
service (scrape and evaluation every second)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from chaoslab.pdca import series
from chaoslab.pdca_model import EventKind
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.hypothesis import comparison
from tests.support.prometheus import (
    PrometheusProcess,
    ShopExporter,
    active_alerts,
    instant,
    start_prometheus,
    wait_for,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(180)]

RATIO = (
    '(sum(rate(http_requests_total{service="cart", code="500"}[3s])) or vector(0))'
    ' / sum(rate(http_requests_total{service="cart"}[3s]))'
)
ERRORS = f"{RATIO} > 0.05"
NEVER = 'sum(rate(http_requests_total{service="cart"}[3s])) > 1e9'


@pytest.fixture(scope="module")
def cart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShopExporter, PrometheusProcess]]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "cart", "interval": "1s", "rules": [
        {"alert": "CartErrors", "expr": ERRORS, "for": "2s", "labels": {"service": "cart"}},
        {"alert": "CartTraffic", "expr": NEVER, "labels": {"service": "cart"}},
    ]}]}))  # fmt: skip
    exporter = ShopExporter("cart", rps=20)
    exporter.start()
    prometheus = start_prometheus(workdir, targets={"cart": exporter.port}, rule_files=[rules])
    try:
        wait_for(lambda: instant(prometheus.url, f"{RATIO} == 0"), timeout=60, what="clean traffic")
        yield exporter, prometheus
    finally:
        prometheus.stop()
        exporter.stop()


def test_a_burst_of_errors_is_charted_held_pending_firing_and_resolved(
    cart: tuple[ShopExporter, PrometheusProcess],
) -> None:
    exporter, prometheus = cart
    fault_start = datetime.now(UTC)
    exporter.set(error_ratio=0.5)
    wait_for(lambda: "firing" in active_alerts(prometheus.url).get("CartErrors", set()), timeout=60,
             what="CartErrors firing")  # fmt: skip
    exporter.set(error_ratio=0.0)
    wait_for(lambda: "CartErrors" not in active_alerts(prometheus.url), timeout=60,
             what="CartErrors resolved")  # fmt: skip
    wait_for(lambda: instant(prometheus.url, f"{RATIO} == 0"), timeout=60, what="the ratio back at 0")

    def resolved_in_range() -> series.Window | None:
        """A window whose range query has an evaluation after the alert's last sample."""
        window = series.window_for(fault_start=fault_start, last=datetime.now(UTC), interval_s=1.0)
        with PrometheusClient(prometheus.url) as client:
            traces = series.alert_traces(client, ["CartErrors"], window) or {}
        events = series.alert_events([], traces, window)
        return window if any(e.kind is EventKind.ALERT_RESOLVED for e in events) else None

    window = wait_for(resolved_in_range, timeout=30, what="an evaluation after the alert resolved")
    found = comparison(ERRORS)
    assert found is not None
    charted = series.Charted(alert="CartErrors", service="cart", query=found.lhs, comparison=found, for_s=2.0)
    with PrometheusClient(prometheus.url) as client:
        sli = series.sli_series(client, charted, window)
        held = series.conditions_held(client, [NEVER, ERRORS], window)
        traces = series.alert_traces(client, ["CartErrors", "CartTraffic"], window)

    assert sli.error is None
    assert sli.step_s == 1.0
    values = [v for _ts, v in sli.points if v is not None]
    assert max(values) > 0.05  # the burst
    assert values[-1] <= 0.05  # and the recovery
    worst = series.worst_value(sli, found)
    assert worst is not None
    assert 0.05 < worst <= 1.0
    assert series.longest_breach_s(sli, found) >= 2.0  # it fired, so it held at least `for: 2s`

    assert held is not None
    assert set(held) == {1}  # only the error condition held: one query told both apart
    assert held[1][0] >= fault_start.timestamp() - 1

    assert traces is not None
    assert traces["CartTraffic"].pending == traces["CartTraffic"].firing == ()
    cart_trace = traces["CartErrors"]
    assert cart_trace.pending
    assert cart_trace.firing
    assert cart_trace.pending[0] < cart_trace.firing[0]

    detection = series.detection(charted, sli, cart_trace, fallback_breach=None)
    assert detection.noticed
    assert detection.pending_after_s is not None
    assert detection.firing_after_s is not None
    assert detection.pending_after_s <= detection.firing_after_s
    events = series.alert_events([charted], {"CartErrors": cart_trace}, window)
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.ALERT_PENDING, EventKind.ALERT_FIRING, EventKind.ALERT_RESOLVED], (
        cart_trace, window)
    assert events[0].text == "CartErrors (cart) pending"


def test_prometheus_gone_is_an_error_on_the_series_not_an_exception(tmp_path: Path) -> None:
    prometheus = start_prometheus(tmp_path / "gone", targets={})
    url = prometheus.url
    prometheus.stop()
    window = series.window_for(fault_start=datetime.now(UTC), last=datetime.now(UTC), interval_s=None)
    charted = series.Charted(alert="CartErrors", service="cart", query=RATIO, comparison=comparison(ERRORS))
    with PrometheusClient(url, timeout=2.0) as client:
        sli = series.sli_series(client, charted, window)
        assert series.alert_traces(client, ["CartErrors"], window) is None
        assert series.conditions_held(client, [ERRORS], window) is None
    assert sli.points == ()
    assert sli.error is not None
    assert "cannot reach Prometheus" in sli.error
